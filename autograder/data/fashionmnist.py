"""FashionMNIST in torchvision's raw layout (uncompressed IDX files):

    FashionMNIST/raw/train-images-idx3-ubyte    N x 28 x 28 uint8, magic 2051
    FashionMNIST/raw/train-labels-idx1-ubyte    N uint8 labels 0-9, magic 2049
    FashionMNIST/raw/t10k-images-idx3-ubyte
    FashionMNIST/raw/t10k-labels-idx1-ubyte

``torchvision.datasets.FashionMNIST(root, download=False)`` reads it as is. The kernel's
view keeps every image and writes every test label as 0.

The synthetic stand-in draws ten garment-like silhouettes, jittered in size, place,
brightness and outline, with noise; pairs of classes share a body (t-shirt and shirt,
pullover and coat, sneaker and sandal), so an MLP must learn details to pass 89%.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .files import files_problems

CLASSES = 10
NAME = "fashionmnist"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test labels (all 0)"
SIDE = 28
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
#: What ``FashionMNIST(root, download=True)`` fetches (the end of the path it saves it to),
#: and the file of the view that answers it (gzipped as it is served): the handout's own
#: call works offline, at whatever root the notebook chose.
DOWNLOADS = {f"FashionMNIST/raw/{name}.gz": f"FashionMNIST/raw/{name}" for name in FILES.values()}
_IMAGES, _LABELS = 2051, 2049
_COUNTS = {"small": (6000, 1000), "full": (60000, 10000)}


def raw_dir(folder: Path) -> Path:
    return folder / "FashionMNIST" / "raw"


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes: big-endian magic and sizes, then the uint8 data."""
    magic = _IMAGES if array.ndim == 3 else _LABELS
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(idx_bytes(array))


def parse_idx(raw: bytes, where: str) -> np.ndarray:
    """The array of an IDX file's bytes (``where`` names the file in messages)."""
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (_IMAGES, _LABELS):
        raise ValueError(f"{where} is not an IDX file of uint8 images or labels (magic {magic})")
    dims = 3 if magic == _IMAGES else 1
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{where}: the header says {shape}, the file holds {data.size} values")
    return data.reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(path.read_bytes(), str(path))


def _garment(label: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("L", (SIDE, SIDE), 0)
    pen = ImageDraw.Draw(image)
    s = rng.uniform(0.7, 1.15)
    dx, dy = rng.integers(-3, 4, 2)
    tone = int(rng.integers(110, 256))

    def box(x0: float, y0: float, x1: float, y1: float, fill: int = tone) -> None:
        c = SIDE / 2
        pen.rectangle([c + (x0 - c) * s + dx, c + (y0 - c) * s + dy, c + (x1 - c) * s + dx, c + (y1 - c) * s + dy],
                      fill=fill)

    def poly(points: list[tuple[float, float]], fill: int = tone) -> None:
        c = SIDE / 2
        pen.polygon([(c + (x - c) * s + dx, c + (y - c) * s + dy) for x, y in points], fill=fill)

    if label in (0, 6):  # t-shirt / shirt: a body with short sleeves; a shirt has a placket and collar
        box(8, 6, 20, 24)
        box(3, 6, 25, 11)
        if label == 6:
            box(13, 6, 15, 24, fill=tone // 3)
            poly([(11, 6), (14, 10), (17, 6)], fill=tone // 3)
    elif label == 1:  # trouser: two legs
        box(8, 3, 20, 8)
        box(8, 8, 13, 26)
        box(15, 8, 20, 26)
    elif label in (2, 4):  # pullover / coat: long sleeves; a coat is longer with a zip
        box(8, 5, 20, 21 if label == 2 else 26)
        box(3, 5, 8, 22)
        box(20, 5, 25, 22)
        if label == 4:
            box(13, 5, 15, 26, fill=tone // 3)
    elif label == 3:  # dress: a narrow top widening to the hem
        poly([(11, 3), (17, 3), (23, 26), (5, 26)])
    elif label in (5, 7):  # sandal / sneaker: a low shoe; a sandal is open straps
        if label == 7:
            poly([(3, 16), (15, 12), (25, 17), (25, 22), (3, 22)])
        else:
            for y in (13, 17, 21):
                box(3, y, 25, y + 2)
    elif label == 8:  # bag: a box with a handle
        box(5, 11, 23, 25)
        pen.arc([9 + dx, 4 + dy, 19 + dx, 16 + dy], 180, 360, fill=tone, width=2)
    else:  # ankle boot: a tall shaft on a sole
        box(13, 4, 22, 20)
        poly([(4, 16), (22, 16), (24, 24), (4, 24)])
    pixels = np.asarray(image, dtype=np.float32)
    top, left = rng.integers(0, SIDE - 8, 2)  # a patch of the garment hidden, as folds and prints do
    pixels[top:top + int(rng.integers(4, 9)), left:left + int(rng.integers(4, 9))] *= rng.uniform(0, 0.5)
    pixels += rng.normal(0, 55, (SIDE, SIDE))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([np.asarray(_garment(int(label), rng)) for label in labels])


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 11)
    raw_dir(folder).mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "test"), _COUNTS[scale]):
        labels = rng.integers(0, CLASSES, count).astype(np.uint8)
        write_idx(raw_dir(folder) / FILES[(split, "images")], draw(labels, rng))
        write_idx(raw_dir(folder) / FILES[(split, "labels")], labels)
    return [folder / "FashionMNIST"]


def missing(folder: Path) -> list[str]:
    paths = [raw_dir(folder) / name for name in FILES.values()]
    return files_problems(paths, read_idx, "FashionMNIST's raw IDX files, uncompressed")


def heldout(folder: Path) -> np.ndarray:
    """The test split's labels (trusted side only)."""
    return read_idx(raw_dir(folder) / FILES[("test", "labels")]).astype(np.int64)


def stage(source: Path, view: Path) -> None:
    """Every image and the training labels; the test labels all 0."""
    raw_dir(view).mkdir(parents=True, exist_ok=True)
    for key, name in FILES.items():
        if key != ("test", "labels"):
            shutil.copy2(raw_dir(source) / name, raw_dir(view) / name)
    write_idx(raw_dir(view) / FILES[("test", "labels")], np.zeros_like(heldout(source), dtype=np.uint8))
