"""The course's face data: ``face_data.npy``, N x 64 x 64 uint8 grey faces.

The kernel's view holds all but the last tenth of the faces; the grader keeps those
as held-out faces for measuring the denoising autoencoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .files import single_file_problems

FILE = "face_data.npy"
NAME = "faces"  # what rubrics call it: the registry finds the module by it
WITHHELD = "held-out faces (left out)"
SIZE = 64
HELDOUT_FRACTION = 0.1
_COUNTS = {"small": 400, "full": 2000}


def draw_face(rng: np.random.Generator) -> np.ndarray:
    """A grey 64 x 64 face: head, eyes, brows, nose and mouth, varied in place, size and light."""
    image = Image.new("L", (SIZE, SIZE), int(rng.integers(20, 80)))
    pen = ImageDraw.Draw(image)
    cx, cy = 32 + rng.uniform(-4, 4), 33 + rng.uniform(-4, 4)
    width, height = rng.uniform(18, 24), rng.uniform(23, 28)
    skin = int(rng.integers(150, 225))
    pen.ellipse([cx - width, cy - height, cx + width, cy + height], fill=skin)
    eye_y, eye_dx = cy - height * rng.uniform(0.2, 0.3), width * rng.uniform(0.35, 0.45)
    eye = int(rng.integers(10, 60))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        pen.ellipse([ex - 4, eye_y - 2.5, ex + 4, eye_y + 2.5], fill=eye)
        pen.line([ex - 5, eye_y - 6, ex + 5, eye_y - 6 - side * rng.uniform(-1, 1)], fill=eye, width=2)
    pen.line([cx, eye_y + 3, cx + rng.uniform(-2, 2), cy + height * 0.25], fill=skin - 60, width=2)
    mouth_y, mouth_w = cy + height * rng.uniform(0.45, 0.55), width * rng.uniform(0.35, 0.55)
    pen.arc([cx - mouth_w, mouth_y - 5, cx + mouth_w, mouth_y + 5], 10, 170, fill=eye, width=2)
    image = image.filter(ImageFilter.GaussianBlur(1.5))  # photographs have soft edges
    shade = np.linspace(rng.uniform(-25, 0), rng.uniform(0, 25), SIZE)[None, :]
    return np.clip(np.asarray(image, dtype=np.float32) + shade, 0, 255).astype(np.uint8)


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 11)
    faces = np.stack([draw_face(rng) for _ in range(_COUNTS[scale])])
    np.save(folder / FILE, faces)
    return [folder / FILE]


def _load(folder: Path) -> np.ndarray:
    faces = np.load(folder / FILE, allow_pickle=False)
    if faces.ndim != 3 or faces.shape[1:] != (SIZE, SIZE) or faces.dtype != np.uint8:
        raise ValueError(f"{folder / FILE} should be N x 64 x 64 uint8, is {faces.shape} {faces.dtype}")
    return faces


def _split(count: int) -> int:
    return count - max(1, round(count * HELDOUT_FRACTION))


def missing(folder: Path) -> list[str]:
    return single_file_problems(folder, FILE, _load)


def stage(source: Path, view: Path) -> None:
    faces = _load(source)
    np.save(view / FILE, faces[: _split(len(faces))])


def visible(source: Path) -> np.ndarray:
    """The faces the kernel sees."""
    faces = _load(source)
    return faces[: _split(len(faces))]


def heldout(source: Path) -> np.ndarray:
    """The faces the kernel never sees (trusted side only)."""
    faces = _load(source)
    return faces[_split(len(faces)) :]
