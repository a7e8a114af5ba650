"""EMNIST letters, in the two layouts courses read it from:

    EMNIST/raw/emnist-letters-train-images-idx3-ubyte   torchvision's layout (uncompressed IDX):
    EMNIST/raw/emnist-letters-train-labels-idx1-ubyte   ``torchvision.datasets.EMNIST(root,
    EMNIST/raw/emnist-letters-test-images-idx3-ubyte    split="letters")`` reads it as is
    EMNIST/raw/emnist-letters-test-labels-idx1-ubyte

    emnist_cache/emnist.zip                             the ``emnist`` package's cache file (its
        gzip/emnist-letters-train-images-idx3-ubyte.gz  ``~/.cache/emnist/emnist.zip``, NIST's
        gzip/emnist-letters-train-labels-idx1-ubyte.gz  gzip.zip): ``extract_training_samples``
        ...                                             reads the gzipped IDX files inside

A data folder needs one of the two; the stand-in has both. Images are N x 28 x 28 uint8
stored transposed, as NIST stores them (a reader transposes each image to see it upright);
labels are 1-26 for a-z, upper and lower case together (0 is torchvision's "N/A" class).
The kernel's view keeps every image and the training labels and writes every test label as
1 (``SHOWN``, the letter a), so that the handout's own coding (``labels - 1``) and a
notebook's own evaluation of the test set run (a 0 would become 255, or -1, and fail a
cross-entropy); what that evaluation prints means nothing, and the grader never reads it.
Of the real zip (every EMNIST split, 0.5 GB) it keeps the letters.

The synthetic stand-in draws each letter in upper or lower case in the default font,
jittered in size, place, slant and stroke, blurred, with noise: an MLP of 784 → 20 → 40 →
26 reaches about 85% on the small stand-in after 30 epochs of Adam.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .fashionmnist import idx_bytes, parse_idx, read_idx, write_idx

NAME = "emnist"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test labels (all 1, the letter a)"
SHOWN = 1  # each withheld label as the kernel's view holds it
SIDE = 28
LETTERS = "abcdefghijklmnopqrstuvwxyz"
SPLIT = "letters"
PARTS = (("train", "images"), ("train", "labels"), ("test", "images"), ("test", "labels"))
ZIP = Path("emnist_cache") / "emnist.zip"  # not emnist/: EMNIST/ beside it on a case-blind disk
#: The ``emnist`` package's ``extract_training_samples``/``extract_test_samples`` read its
#: cache file (downloading it first when it is not there): the kernel's package is pointed
#: at the view's copy, so the handout's own calls work offline.
#: torchvision's ``EMNIST(root, split="letters", download=True)`` fetches the same zip.
DOWNLOADS = {"python:emnist.CACHE_FILE_PATH": str(ZIP), "EMNIST/raw/gzip.zip": str(ZIP)}
_COUNTS = {"small": (2600, 520), "full": (124800, 20800)}


def raw_dir(folder: Path) -> Path:
    return folder / "EMNIST" / "raw"


def file_name(usage: str, matrix: str) -> str:
    """``emnist-letters-train-images-idx3-ubyte`` and the like, as NIST names them."""
    return f"emnist-{SPLIT}-{usage}-{matrix}-idx{3 if matrix == 'images' else 1}-ubyte"


def member(usage: str, matrix: str) -> str:
    """The file's name inside the zip."""
    return f"gzip/{file_name(usage, matrix)}.gz"


def read_raw(folder: Path) -> dict[tuple[str, str], np.ndarray]:
    """The four arrays of torchvision's layout."""
    return {(usage, matrix): read_idx(raw_dir(folder) / file_name(usage, matrix)) for usage, matrix in PARTS}


def read_zip(folder: Path) -> dict[tuple[str, str], np.ndarray]:
    """The four arrays of the ``emnist`` package's zip."""
    path = folder / ZIP
    try:
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
            lacking = [member(u, m) for u, m in PARTS if member(u, m) not in names]
            if lacking:
                raise ValueError(f"{path} lacks {', '.join(lacking)} (the emnist package's emnist.zip)")
            return {(u, m): parse_idx(gzip.decompress(bundle.read(member(u, m))), f"{path}:{member(u, m)}")
                    for u, m in PARTS}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable zip of gzipped IDX files ({error})") from None


def _layouts(folder: Path) -> dict[str, dict[tuple[str, str], np.ndarray] | str]:
    """Each layout's arrays, or what is wrong with it."""
    found: dict[str, dict[tuple[str, str], np.ndarray] | str] = {}
    for layout, read, present in (("torchvision", read_raw, raw_dir(folder).is_dir()),
                                  ("emnist package", read_zip, (folder / ZIP).is_file())):
        if not present:
            continue
        try:
            arrays = read(folder)
        except (ValueError, FileNotFoundError) as error:
            found[layout] = str(error)
            continue
        problem = _shape_problem(arrays)
        found[layout] = problem if problem else arrays
    return found


def _shape_problem(arrays: dict[tuple[str, str], np.ndarray]) -> str:
    for usage in ("train", "test"):
        images, labels = arrays[(usage, "images")], arrays[(usage, "labels")]
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            return f"the {usage} images should be N x 28 x 28, are {images.shape}"
        if len(images) != len(labels):
            return f"{len(labels)} {usage} labels for {len(images)} images"
        if labels.size and labels.max() > len(LETTERS):
            return f"the {usage} labels should be 1-26 (letters), reach {labels.max()}"
    return ""


def missing(folder: Path) -> list[str]:
    layouts = _layouts(folder)
    if any(isinstance(arrays, dict) for arrays in layouts.values()):
        return []
    if not layouts:
        return [f"{raw_dir(folder)} (torchvision's EMNIST files, {file_name('train', 'images')} and the like) or "
                f"{folder / ZIP} (the emnist package's cache file) is needed; neither is there"]
    return [f"EMNIST letters in {folder}, {layout} layout: {problem}" for layout, problem in layouts.items()]


def read(folder: Path) -> dict[tuple[str, str], np.ndarray]:
    """The arrays of the first complete layout (torchvision's, then the package's)."""
    for arrays in _layouts(folder).values():
        if isinstance(arrays, dict):
            return arrays
    raise ValueError("; ".join(missing(folder)))


def heldout(folder: Path) -> np.ndarray:
    """The test labels, 1-26 (trusted side only)."""
    return read(folder)[("test", "labels")]


def stage(source: Path, view: Path) -> None:
    """Each complete layout, its test labels all ``SHOWN``."""
    for layout, arrays in _layouts(source).items():
        if not isinstance(arrays, dict):
            continue
        shown = {**arrays, ("test", "labels"): np.full_like(arrays[("test", "labels")], SHOWN)}
        if layout == "torchvision":
            _write_raw(view, shown)
        else:
            _write_zip(view, shown)


def _write_raw(folder: Path, arrays: dict[tuple[str, str], np.ndarray]) -> None:
    raw_dir(folder).mkdir(parents=True, exist_ok=True)
    for (usage, matrix), array in arrays.items():
        write_idx(raw_dir(folder) / file_name(usage, matrix), array)


def _write_zip(folder: Path, arrays: dict[tuple[str, str], np.ndarray]) -> None:
    path = folder / ZIP
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as bundle:
        for (usage, matrix), array in arrays.items():
            bundle.writestr(member(usage, matrix), gzip.compress(idx_bytes(array), mtime=0))


def _letter(label: int, rng: np.random.Generator, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> np.ndarray:
    """Letter ``label`` (1-26) upright, 28 x 28."""
    character = LETTERS[label - 1]
    character = character.upper() if rng.random() < 0.5 else character
    image = Image.new("L", (SIDE * 2, SIDE * 2), 0)
    pen = ImageDraw.Draw(image)
    place = (SIDE + float(rng.integers(-2, 3)), SIDE + float(rng.integers(-2, 3)))
    pen.text(place, character, fill=255, font=font, anchor="mm", stroke_width=int(rng.integers(0, 2)), stroke_fill=255)
    image = image.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    image = image.resize((SIDE, SIDE), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(0.6))
    pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.8, 1.2) + rng.normal(0, 12, (SIDE, SIDE))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Upright pictures of ``labels`` (1-26), N x 28 x 28 uint8 (store them transposed)."""
    fonts = {size: ImageFont.load_default(size=size) for size in range(30, 46, 3)}
    sizes = list(fonts)
    return np.stack([_letter(int(label), rng, fonts[sizes[int(rng.integers(len(sizes)))]]) for label in labels])


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 26)
    arrays: dict[tuple[str, str], np.ndarray] = {}
    for usage, count in zip(("train", "test"), _COUNTS[scale]):
        labels = rng.integers(1, len(LETTERS) + 1, count).astype(np.uint8)
        arrays[(usage, "images")] = draw(labels, rng).transpose(0, 2, 1)  # stored transposed, as NIST does
        arrays[(usage, "labels")] = labels
    _write_raw(folder, arrays)
    _write_zip(folder, arrays)
    return [raw_dir(folder).parent, (folder / ZIP).parent]

