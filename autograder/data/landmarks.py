"""The course's face-landmark data: ``face_landmark.npz`` with ``train_images`` and
``test_images`` (N x 224 x 224 x 3 uint8) and ``train_landmarks`` and ``test_landmarks``
(N x 68 x 2, x and y in pixels).

The kernel's view carries zeros in place of the test landmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .files import single_file_problems

FILE = "face_landmark.npz"
NAME = "landmarks"  # what rubrics call it: the registry finds the module by it
WITHHELD = "test landmarks (all 0)"
SIZE = 224
POINTS = 68
KEYS = ("train_images", "train_landmarks", "test_images", "test_landmarks")
_COUNTS = {"small": (200, 50), "full": (1500, 300)}


def _template() -> np.ndarray:
    """68 points of a face in the usual order (jaw, brows, nose, eyes, mouth), unit size."""
    jaw = [(0.9 * np.cos(t), 0.15 + 0.85 * np.sin(t)) for t in np.linspace(np.pi, 0, 17)[::-1] * -1 + np.pi]
    brows = [(x, -0.45 - 0.08 * np.sin((x + 0.65) / 0.5 * np.pi)) for x in np.linspace(-0.65, -0.15, 5)]
    brows += [(-x, y) for x, y in reversed(brows)]
    nose = [(0.0, y) for y in np.linspace(-0.32, 0.02, 4)] + [(x, 0.12) for x in np.linspace(-0.16, 0.16, 5)]
    eye = [(0.14 * np.cos(t), 0.06 * np.sin(t)) for t in np.linspace(np.pi, 3 * np.pi, 6, endpoint=False)]
    eyes = [(x - 0.38, y - 0.25) for x, y in eye] + [(x + 0.38, y - 0.25) for x, y in eye]
    outer = [(0.32 * np.cos(t), 0.45 + 0.13 * np.sin(t)) for t in np.linspace(np.pi, 3 * np.pi, 12, endpoint=False)]
    inner = [(0.2 * np.cos(t), 0.45 + 0.05 * np.sin(t)) for t in np.linspace(np.pi, 3 * np.pi, 8, endpoint=False)]
    points = np.array(jaw + brows + nose + eyes + outer + inner)
    assert points.shape == (POINTS, 2)
    return points


TEMPLATE = _template()


def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An RGB face at a random place, size and tilt, and its 68 landmarks in pixels."""
    scale, angle = rng.uniform(36, 58), rng.uniform(-0.3, 0.3)
    margin = 1.15 * scale + 2  # the face stays inside the image, as in the course's data
    centre = rng.uniform(margin, SIZE - margin, 2)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = centre + scale * TEMPLATE @ rotation.T
    noise = rng.integers(0, 90, (SIZE, SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(noise + np.array(rng.integers(0, 90, 3), dtype=np.uint8))
    pen = ImageDraw.Draw(image)
    skin = tuple(int(v) for v in rng.integers(150, 240, 3))
    pen.polygon([tuple(p) for p in np.vstack([points[:17], points[26:16:-1] + (points[26:16:-1] - centre) * 0.25])],
                fill=skin)
    dark = (30, 25, 25)
    pen.line([tuple(p) for p in points[17:22]], fill=dark, width=3)
    pen.line([tuple(p) for p in points[22:27]], fill=dark, width=3)
    pen.line([tuple(p) for p in points[27:31]], fill=dark, width=2)
    pen.line([tuple(p) for p in points[31:36]], fill=dark, width=2)
    pen.polygon([tuple(p) for p in points[36:42]], fill=dark)
    pen.polygon([tuple(p) for p in points[42:48]], fill=dark)
    pen.polygon([tuple(p) for p in points[48:60]], fill=(170, 40, 50))
    pen.polygon([tuple(p) for p in points[60:68]], fill=(90, 20, 25))
    return np.asarray(image), points.astype(np.float32)


def _draw_many(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    images, points = zip(*(draw(rng) for _ in range(count)))
    return np.stack(images), np.stack(points)


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed + 17)
    train, test = _COUNTS[scale]
    train_images, train_landmarks = _draw_many(rng, train)
    test_images, test_landmarks = _draw_many(rng, test)
    np.savez(folder / FILE, train_images=train_images, train_landmarks=train_landmarks,
             test_images=test_images, test_landmarks=test_landmarks)
    return [folder / FILE]


def _load(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / FILE, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in KEYS if key in stored.files}
    absent = [key for key in KEYS if key not in arrays]
    if absent:
        raise ValueError(f"{folder / FILE} lacks {', '.join(absent)}")
    for split in ("train", "test"):
        images, points = arrays[f"{split}_images"], arrays[f"{split}_landmarks"]
        if images.shape[1:] != (SIZE, SIZE, 3) or points.shape[1:] != (POINTS, 2) or len(images) != len(points):
            raise ValueError(f"{folder / FILE}: {split} images {images.shape} and landmarks {points.shape} "
                             "do not match")
    return arrays


def missing(folder: Path) -> list[str]:
    return single_file_problems(folder, FILE, _load)


def stage(source: Path, view: Path) -> None:
    arrays = _load(source)
    arrays["test_landmarks"] = np.zeros_like(arrays["test_landmarks"])
    np.savez(view / FILE, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def heldout(source: Path) -> np.ndarray:
    """The test landmarks, in pixels (trusted side only)."""
    return _load(source)["test_landmarks"].astype(np.float64)
