"""STL10 in its binary layout, as ``stl10_binary.tar.gz`` unpacks and torchvision reads it:

    stl10_binary/train_X.bin    N x 3 x 96 x 96 uint8, each image column-major (torchvision
                                transposes the last two axes after reading)
    stl10_binary/train_y.bin    N uint8 labels 1-10
    stl10_binary/test_X.bin
    stl10_binary/test_y.bin
    stl10_binary/class_names.txt

The unlabelled images (``unlabeled_X.bin``, 2.6 GB) are not needed and not made. Notebooks
read the files with numpy (``read_images``/``read_labels`` below show how) or with
torchvision's ``STL10(root, split=..., download=True)``, whose download the kernel answers
with the view's folder (its MD5 check of the real files passes for what the grader
serves). The kernel's view keeps every image and the training labels, and writes every
test label as 1 (``SHOWN``: a class, airplane, which torchvision reads as 0), so that a
notebook's own evaluation of the test set runs; what it prints means nothing, and the
grader never reads it.

A course that splits the labelled images its own way (ece4179-2021-a3: 8,000 / 2,000 / 3,000
of the 13,000) declares the split in its rubric (``stl10:``, ``SplitSpec`` below): the view
then writes ``SHOWN`` for the labels of the withheld split wherever they are, and checks read the
splits' labels with ``SplitDataset.labels``.

The synthetic stand-in draws ten kinds of object (a shape and a palette per class, jittered
in place, size, colour and background texture), learnable by a small CNN in a few epochs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .files import files_problems

NAME = "stl10"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test labels (all 1, the first class)"
#: What the kernel's view holds for each withheld label: a class (a cross-entropy of the
#: notebook's own on the test set runs), read by torchvision as 0.
SHOWN = 1
CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
SIDE = 96
FOLDER = "stl10_binary"
FILES = {("train", "images"): "train_X.bin", ("train", "labels"): "train_y.bin",
         ("test", "images"): "test_X.bin", ("test", "labels"): "test_y.bin"}
NAMES_FILE = "class_names.txt"
#: torchvision's ``STL10(root, download=True)`` fetches ``stl10_binary.tar.gz``: the kernel
#: links the view's folder where the archive would unpack (its MD5 sums then pass).
DOWNLOADS = {"stl10_binary.tar.gz": f"./{FOLDER}"}
_COUNTS = {"small": (250, 400), "full": (5000, 8000)}  # small: 96 x 96 CNNs train on 2 cores in CI
_IMAGE_BYTES = 3 * SIDE * SIDE


def folder_of(root: Path) -> Path:
    return root / FOLDER


def write_images(path: Path, images: np.ndarray) -> None:
    """N x 96 x 96 x 3 uint8 images (rows, columns, channels) in STL10's byte order."""
    if images.ndim != 4 or images.shape[1:] != (SIDE, SIDE, 3) or images.dtype != np.uint8:
        raise ValueError(f"STL10 images are N x 96 x 96 x 3 uint8, not {images.shape} {images.dtype}")
    path.write_bytes(np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes())


def read_images(path: Path) -> np.ndarray:
    """The images of an STL10 ``*_X.bin`` file as N x 96 x 96 x 3 uint8 (rows, columns, channels)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _IMAGE_BYTES:
        raise ValueError(f"{path} should hold 96 x 96 colour images ({_IMAGE_BYTES} bytes each); it holds "
                         f"{raw.size} bytes")
    return raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 3, 2, 1)


def read_labels(path: Path) -> np.ndarray:
    """The labels of an STL10 ``*_y.bin`` file, 1-10 (0 in the view's test labels)."""
    labels = np.fromfile(path, dtype=np.uint8)
    if labels.size == 0 or labels.max() > len(CLASSES):
        raise ValueError(f"{path} should hold labels 1-{len(CLASSES)}, one byte each")
    return labels


def _object(label: int, rng: np.random.Generator) -> Image.Image:
    """One 96 x 96 picture of class ``label`` (0-9): a shape of the class's own, in its palette."""
    ground = rng.integers(40, 200, 3)
    pixels = np.clip(ground + rng.normal(0, 25, (SIDE // 4, SIDE // 4, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    pen = ImageDraw.Draw(image)
    hue = np.array([(230, 60, 50), (60, 200, 70), (50, 90, 230), (230, 210, 40), (200, 60, 210),
                    (40, 210, 210), (240, 140, 30), (120, 70, 30), (250, 250, 250), (20, 20, 20)][label])
    colour = tuple(int(c) for c in np.clip(hue + rng.normal(0, 20, 3), 0, 255))
    size = rng.uniform(22, 34)
    cx, cy = rng.uniform(size + 4, SIDE - size - 4, 2)
    box = [cx - size, cy - size, cx + size, cy + size]
    kind = label % 5
    if kind == 0:
        pen.ellipse(box, fill=colour)
    elif kind == 1:
        pen.rectangle(box, fill=colour)
    elif kind == 2:
        pen.polygon([(cx, cy - size), (cx + size, cy + size), (cx - size, cy + size)], fill=colour)
    elif kind == 3:
        pen.rectangle([cx - size, cy - size / 3, cx + size, cy + size / 3], fill=colour)
        pen.rectangle([cx - size / 3, cy - size, cx + size / 3, cy + size], fill=colour)
    else:
        pen.ellipse(box, outline=colour, width=int(size / 3))
    if label >= 5:  # the second five: the same shapes with stripes across them
        for y in range(int(cy - size), int(cy + size), 8):
            pen.line([cx - size, y, cx + size, y], fill=tuple(255 - c for c in colour), width=2)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pictures for ``labels`` (0-9) as N x 96 x 96 x 3 uint8."""
    return np.stack([np.asarray(_object(int(label), rng)) for label in labels])


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 10)
    root = folder_of(folder)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "test"), _COUNTS[scale]):
        labels = rng.integers(0, len(CLASSES), count)
        write_images(root / FILES[(split, "images")], draw(labels, rng))
        (root / FILES[(split, "labels")]).write_bytes((labels + 1).astype(np.uint8).tobytes())
    (root / NAMES_FILE).write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return [root]


def _read(path: Path) -> np.ndarray:
    return read_images(path) if path.name.endswith("_X.bin") else read_labels(path)


def missing(folder: Path) -> list[str]:
    root = folder_of(folder)
    problems = files_problems([root / name for name in FILES.values()], _read,
                              "STL10's binary files, as stl10_binary.tar.gz unpacks")
    if problems:
        return problems
    for split in ("train", "test"):
        images = (root / FILES[(split, "images")]).stat().st_size // _IMAGE_BYTES
        labels = (root / FILES[(split, "labels")]).stat().st_size
        if images != labels:
            problems.append(f"{root / FILES[(split, 'labels')]} holds {labels} labels for {images} images")
    return problems


def heldout(folder: Path) -> np.ndarray:
    """The test labels, 1-10 (trusted side only)."""
    return read_labels(folder_of(folder) / FILES[("test", "labels")])


def stage(source: Path, view: Path) -> None:
    """Every image and the training labels; the test labels all ``SHOWN``."""
    root, seen = folder_of(source), folder_of(view)
    seen.mkdir(parents=True, exist_ok=True)
    for key, name in FILES.items():
        if key != ("test", "labels"):
            shutil.copy2(root / name, seen / name)
    if (root / NAMES_FILE).is_file():
        shutil.copy2(root / NAMES_FILE, seen / NAMES_FILE)
    (seen / FILES[("test", "labels")]).write_bytes(bytes([SHOWN]) * len(heldout(source)))


# A course's split of STL10's labelled images, declared in its rubric (``stl10:``).

SPLITS = ("train", "val", "test")
Split = Literal["train", "val", "test"]


def _the_test_split() -> list[Split]:
    return ["test"]


class SplitSpec(BaseModel):
    """A rubric's split of the 13,000 labelled images (train_X then test_X, in file order, or
    shuffled with ``seed``) into the course's training, validation and test sets. A file with
    fewer labelled images (a stand-in) is split in the same proportions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="what notebooks' datasets: call it")
    sizes: dict[Split, int] = Field(description="images per split on the real files")
    seed: int | None = Field(default=None, description="shuffle before splitting (numpy's default_rng(seed)); "
                                                       "none: in file order")
    withheld: list[Split] = Field(default_factory=_the_test_split)
    about: str = ""

    @model_validator(mode="after")
    def _sizes(self) -> SplitSpec:
        if any(count <= 0 for count in self.sizes.values()):
            raise ValueError("every split needs at least one image")
        if sum(self.sizes.values()) > _LABELLED:
            raise ValueError(f"the splits hold {sum(self.sizes.values()):,} images; STL10 has {_LABELLED:,} "
                             "labelled")
        return self


_LABELLED = 13_000


def split_indices(total: int, spec: SplitSpec) -> dict[str, np.ndarray]:
    """Indices into the labelled images (train_X then test_X) of each split."""
    order = np.arange(total) if spec.seed is None else np.random.default_rng(spec.seed).permutation(total)
    wanted = sum(spec.sizes.values())
    scale = min(1.0, total / wanted)
    counts = {name: int(round(count * scale)) for name, count in spec.sizes.items()}
    found: dict[str, np.ndarray] = {}
    start = 0
    for name in SPLITS:
        if name in counts:
            found[name] = order[start:start + counts[name]]
            start += counts[name]
    return found


class SplitDataset:
    """A declared split with the interface of this package's dataset modules."""

    def __init__(self, spec: SplitSpec, *, owner: str) -> None:
        self.spec = spec
        self.owner = owner
        self.NAME = spec.name
        self.WITHHELD = f"the {' and '.join(spec.withheld)} labels (all 1, the first class)"
        self.__name__ = f"STL10 split {spec.name} of {owner}"

    def fingerprint(self) -> str:
        return json.dumps(self.spec.model_dump(), sort_keys=True)

    def synth(self, folder: Path, *, scale: str, seed: int) -> list[Path]:
        return synth(folder, scale=scale, seed=seed)

    def missing(self, folder: Path) -> list[str]:
        return missing(folder)

    def indices(self, source: Path) -> dict[str, np.ndarray]:
        return split_indices(len(_labels(source)), self.spec)

    def labels(self, source: Path, split: str) -> np.ndarray:
        """The labels of ``split``, 0-9 as torchvision gives them (trusted side only)."""
        return _labels(source)[self.indices(source)[split]].astype(np.int64) - 1

    def heldout(self, source: Path) -> dict[str, np.ndarray]:
        """The withheld splits' labels, 0-9, by split (trusted side only)."""
        return {split: self.labels(source, split) for split in self.spec.withheld}

    def stage(self, source: Path, view: Path) -> None:
        stage(source, view)  # images and training labels; test labels all SHOWN
        labels = _labels(source)
        for split in self.spec.withheld:
            labels[self.indices(source)[split]] = SHOWN
        train = (folder_of(source) / FILES[("train", "labels")]).stat().st_size
        seen = folder_of(view)
        (seen / FILES[("train", "labels")]).write_bytes(labels[:train].tobytes())
        (seen / FILES[("test", "labels")]).write_bytes(labels[train:].tobytes())


def _labels(folder: Path) -> np.ndarray:
    """Every labelled image's label, train_y then test_y (1-10)."""
    root = folder_of(folder)
    return np.concatenate([read_labels(root / FILES[(split, "labels")]) for split in ("train", "test")])
