"""GTSRB in torchvision's layout.

    gtsrb/GTSRB/Training/000NN/*.ppm (+ GT-000NN.csv)   43 class folders, class = folder index
    gtsrb/GTSRB/Final_Test/Images/*.ppm                 test images
    gtsrb/GT-final_test.csv                             test labels, ';'-separated, ClassId column

The kernel's view keeps every image but replaces each test ClassId with 0.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = 43
NAME = "gtsrb"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test ClassIds (all 0)"
HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]
#: torchvision's ``GTSRB(root, split=..., download=True)`` fetches three zips into
#: ``root/gtsrb``: the kernel links the view's folders and labels file where they unpack.
DOWNLOADS = {"gtsrb/GTSRB-Training_fixed.zip": "gtsrb/./GTSRB/Training",
             "gtsrb/GTSRB_Final_Test_Images.zip": "gtsrb/./GTSRB/Final_Test",
             "gtsrb/GTSRB_Final_Test_GT.zip": "gtsrb/./GT-final_test.csv"}
_COUNTS = {"small": (30, 430), "full": (912, 12630)}  # per class in training; test images in all
_SHAPES = ("circle", "triangle", "inverted", "square", "diamond")
_COLOURS = ((200, 30, 30), (30, 60, 200), (230, 200, 20), (235, 235, 235))
_GLYPHS = ("none", "bar", "column")


def base(folder: Path) -> Path:
    return folder / "gtsrb"


def training_dir(folder: Path) -> Path:
    return base(folder) / "GTSRB" / "Training"


def test_dir(folder: Path) -> Path:
    return base(folder) / "GTSRB" / "Final_Test" / "Images"


def labels_file(folder: Path) -> Path:
    return base(folder) / "GT-final_test.csv"


def _design(label: int) -> tuple[str, tuple[int, int, int], str]:
    """Class k is a shape, a colour and an inner glyph: 60 designs, the first 43 used."""
    return _SHAPES[label % 5], _COLOURS[(label // 5) % 4], _GLYPHS[label // 20]


def draw_sign(label: int, rng: np.random.Generator) -> Image.Image:
    """One synthetic traffic sign: its class's design, jittered in size, place and light."""
    size = int(rng.integers(30, 61))
    background = tuple(int(v) for v in rng.integers(40, 140, 3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    shape, colour, glyph = _design(label)
    radius = size * rng.uniform(0.33, 0.45)
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08) * size, size / 2 + rng.uniform(-0.08, 0.08) * size
    light = rng.uniform(0.75, 1.15)
    fill = tuple(int(min(255, c * light)) for c in colour)
    if shape == "circle":
        pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        pen.rectangle([cx - radius * 0.85, cy - radius * 0.85, cx + radius * 0.85, cy + radius * 0.85], fill=fill)
    elif shape == "diamond":
        pen.polygon([(cx, cy - radius), (cx + radius, cy), (cx, cy + radius), (cx - radius, cy)], fill=fill)
    else:
        sign = 1 if shape == "triangle" else -1
        pen.polygon([(cx, cy - sign * radius), (cx + radius, cy + sign * radius * 0.8),
                     (cx - radius, cy + sign * radius * 0.8)], fill=fill)
    ink = (20, 20, 20) if colour != (30, 60, 200) else (240, 240, 240)
    width = max(2, int(size * 0.08))
    if glyph == "bar":
        pen.rectangle([cx - radius * 0.55, cy - width / 2, cx + radius * 0.55, cy + width / 2], fill=ink)
    elif glyph == "column":
        pen.rectangle([cx - width / 2, cy - radius * 0.55, cx + width / 2, cy + radius * 0.55], fill=ink)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _row(name: str, image: Image.Image, label: int) -> list[str]:
    width, height = image.size
    return [name, str(width), str(height), "2", "2", str(width - 3), str(height - 3), str(label)]


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(rows)


def write_training(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    for label in range(CLASSES):
        classdir = training_dir(folder) / f"{label:05d}"
        classdir.mkdir(parents=True, exist_ok=True)
        rows = []
        for index in range(per_class):
            name = f"{index // 30:05d}_{index % 30:05d}.ppm"
            image = draw_sign(label, rng)
            image.save(classdir / name, format="PPM")
            rows.append(_row(name, image, label))
        _write_csv(classdir / f"GT-{label:05d}.csv", rows)


def write_test(folder: Path, count: int, rng: np.random.Generator) -> None:
    test_dir(folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        label = int(rng.integers(CLASSES))
        name = f"{index:05d}.ppm"
        image = draw_sign(label, rng)
        image.save(test_dir(folder) / name, format="PPM")
        rows.append(_row(name, image, label))
    _write_csv(labels_file(folder), rows)


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    per_class, tests = _COUNTS[scale]
    rng = np.random.default_rng(seed + 5)
    write_training(folder, per_class, rng)
    write_test(folder, tests, rng)
    return [base(folder)]


def missing(folder: Path) -> list[str]:
    problems = []
    classes = sorted(p.name for p in training_dir(folder).glob("000*") if p.is_dir())
    if len(classes) != CLASSES:
        problems.append(f"{training_dir(folder)} should hold {CLASSES} class folders 00000-00042, has {len(classes)}")
    if not test_dir(folder).is_dir():
        problems.append(f"{test_dir(folder)} is missing")
    if not labels_file(folder).is_file():
        problems.append(f"{labels_file(folder)} (test labels) is missing")
    return problems


def heldout(folder: Path) -> tuple[list[str], np.ndarray]:
    """Test image file names and their labels, from the labels file (trusted side only)."""
    with labels_file(folder).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";", skipinitialspace=True))
    return [row["Filename"] for row in rows], np.array([int(row["ClassId"]) for row in rows])


def stage(source: Path, view: Path) -> None:
    """Copy the images; write the test labels file with every ClassId set to 0."""
    shutil.copytree(base(source) / "GTSRB", base(view) / "GTSRB", dirs_exist_ok=True)
    with labels_file(source).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";", skipinitialspace=True))
    _write_csv(labels_file(view), [[row[key] for key in HEADER[:-1]] + ["0"] for row in rows])
