"""SVHN's cropped digits, in the format torchvision reads (one folder as its root):

    svhn/train_32x32.mat    X: 32 x 32 x 3 x N uint8, y: N x 1, labels 1-10 (10 is digit 0)
    svhn/test_32x32.mat

torchvision's ``SVHN`` checks each file's MD5 against the real one, so a synthetic file
is refused there: notebooks read the files with ``scipy.io.loadmat`` (which is what
torchvision does after its check). The kernel's view keeps every image and writes every
test label as 10.

The synthetic stand-in draws seven-segment digits of random colours on random
backgrounds, jittered, with parts of neighbouring digits at the edges, as house numbers
are cropped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .files import files_problems

CLASSES = 10
NAME = "svhn"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test labels (all 10)"
SIDE = 32
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
_COUNTS = {"small": (5000, 1000), "full": (73257, 26032)}
#: What ``SVHN(root, split, download=True)`` fetches, and the file of the view that answers
#: it: the handout's own call works offline, at whatever root the notebook chose.
DOWNLOADS = {name: f"svhn/{name}" for name in FILES.values()}
# segments a-g of a seven-segment display: which are lit for each digit
_SEGMENTS = {0: "abcdef", 1: "bc", 2: "abdeg", 3: "abcdg", 4: "bcfg", 5: "acdfg", 6: "acdefg", 7: "abc",
             8: "abcdefg", 9: "abcdfg"}


def root(folder: Path) -> Path:
    return folder / "svhn"


def _digit(pen: ImageDraw.ImageDraw, digit: int, x: float, y: float, w: float, h: float, t: float,
           colour: tuple[int, ...]) -> None:
    half = h / 2
    bars = {"a": (x, y, x + w, y + t), "d": (x, y + h - t, x + w, y + h),
            "g": (x, y + half - t / 2, x + w, y + half + t / 2),
            "f": (x, y, x + t, y + half), "b": (x + w - t, y, x + w, y + half),
            "e": (x, y + half, x + t, y + h), "c": (x + w - t, y + half, x + w, y + h)}
    for segment in _SEGMENTS[digit]:
        pen.rectangle(bars[segment], fill=colour)


def _crop(label: int, rng: np.random.Generator) -> np.ndarray:
    background = rng.integers(0, 256, 3)
    ink = np.where(background > 127, rng.integers(0, 90, 3), rng.integers(165, 256, 3))
    image = Image.new("RGB", (SIDE, SIDE), tuple(int(v) for v in background))
    pen = ImageDraw.Draw(image)
    w, h = rng.uniform(10, 15), rng.uniform(18, 24)
    t = rng.uniform(2.2, 3.6)
    x, y = (SIDE - w) / 2 + rng.uniform(-2, 2), (SIDE - h) / 2 + rng.uniform(-2, 2)
    colour = tuple(int(v) for v in ink)
    _digit(pen, label, x, y, w, h, t, colour)
    for side in (-1, 1):  # neighbours, cut by the crop
        if rng.random() < 0.5:
            _digit(pen, int(rng.integers(0, 10)), x + side * (w + rng.uniform(5, 8)), y, w, h, t, colour)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, (SIDE, SIDE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_split(path: Path, digits: np.ndarray, rng: np.random.Generator) -> None:
    from scipy.io import savemat  # slow to import, needed only here

    images = np.stack([_crop(int(d), rng) for d in digits], axis=-1)  # 32 x 32 x 3 x N, as SVHN stores them
    labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
    savemat(path, {"X": images, "y": labels}, do_compression=True)


def read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 32 x 32 x 3, digits 0-9) from one of the .mat files."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        arrays = loadmat(path)
    except (OSError, ValueError, MatReadError) as error:
        raise ValueError(f"{path} is not a readable .mat file: {error}") from None
    images, labels = arrays.get("X"), arrays.get("y")
    if images is None or labels is None or images.shape[:3] != (SIDE, SIDE, 3) or images.shape[3] != len(labels):
        raise ValueError(f"{path} should hold X (32 x 32 x 3 x N uint8) and y (N x 1)")
    return np.transpose(images, (3, 0, 1, 2)), labels.reshape(-1).astype(np.int64) % 10


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 13)
    root(folder).mkdir(parents=True, exist_ok=True)
    for split, count in zip(FILES, _COUNTS[scale]):
        write_split(root(folder) / FILES[split], rng.integers(0, CLASSES, count), rng)
    return [root(folder)]


def missing(folder: Path) -> list[str]:
    return files_problems([root(folder) / name for name in FILES.values()], read_split,
                          "SVHN's cropped digits, as downloaded")


def heldout(folder: Path) -> np.ndarray:
    """The test split's digits, 0-9 (trusted side only)."""
    return read_split(root(folder) / FILES["test"])[1]


def stage(source: Path, view: Path) -> None:
    """The training file as it is; the test file with every label 10."""
    from scipy.io import loadmat, savemat

    root(view).mkdir(parents=True, exist_ok=True)
    shutil.copy2(root(source) / FILES["train"], root(view) / FILES["train"])
    images = loadmat(root(source) / FILES["test"])["X"]
    savemat(root(view) / FILES["test"], {"X": images, "y": np.full((images.shape[3], 1), 10, np.uint8)},
            do_compression=True)
