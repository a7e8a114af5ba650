"""Synthetic stand-ins for the course's files, and the grader's own inputs for the function
checks of question 1. Trusted side only.

``hw2_Q1.npy``: grey 64 x 64 faces of ``autograder.data.faces`` (uint8).

``hw2_Q2_and_Q3_data.npz``: garment images of ``autograder.data.fashionmnist`` (784 pixels,
uint8), ten classes, train / validation / test. A tenth of the training and validation
labels are redrawn at random, so a network that trains to convergence fits noise and its
validation loss bottoms out before the last epoch: the three model choices of 2.1 differ.

``hw2_Q4_data.npz``: the same garments with a shortcut. Every training image of class k
carries a bright 2 x 2 mark in the top rows at column 4 + 2k; in a test image the mark sits
at a random class's place, whatever the label. A network that learns the mark fits the
training set and does worse on the test set the more it relies on it: the "strange
behaviour" the question asks about exists to be found.
"""

from __future__ import annotations

import numpy as np

from autograder.data.faces import draw_face
from autograder.data.fashionmnist import draw

FACES = {"small": 400, "full": 2000}
Q2Q3_SIZES = {"small": (3000, 1000, 1000), "full": (50000, 10000, 10000)}
Q4_SIZES = {"small": (2000, 1000), "full": (60000, 10000)}
LABEL_NOISE = 0.1
CLASSES = 10


def q1(scale: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 11)
    return {"faces": np.stack([draw_face(rng) for _ in range(FACES[scale])])}


def _garments(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, count)
    return draw(labels, rng).reshape(count, 28 * 28), labels.astype(np.int64)


def _noisy(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    redrawn = rng.random(len(labels)) < LABEL_NOISE
    return np.where(redrawn, rng.integers(0, CLASSES, len(labels)), labels).astype(np.int64)


def q2q3(scale: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 2021)
    n_train, n_val, n_test = Q2Q3_SIZES[scale]
    x_train, y_train = _garments(rng, n_train)
    x_val, y_val = _garments(rng, n_val)
    x_test, y_test = _garments(rng, n_test)
    return {"x_train": x_train, "y_train": _noisy(rng, y_train), "x_val": x_val, "y_val": _noisy(rng, y_val),
            "x_test": x_test, "y_test": y_test}


def mark(images: np.ndarray, places: np.ndarray) -> np.ndarray:
    """The 2 x 2 mark at column 4 + 2 * place of the top rows, on flat 28 x 28 images."""
    marked = images.reshape(len(images), 28, 28).copy()
    for image, place in zip(marked, places):
        image[1:3, 4 + 2 * place: 6 + 2 * place] = 255
    return marked.reshape(len(images), -1)


def q4(scale: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 4179)
    n_train, n_test = Q4_SIZES[scale]
    x_train, y_train = _garments(rng, n_train)
    x_test, y_test = _garments(rng, n_test)
    return {"x_train": mark(x_train, y_train), "y_train": y_train,
            "x_test": mark(x_test, rng.integers(0, CLASSES, n_test)), "y_test": y_test}


def face_matrix(seed: int, *, faces: int = 40, rank: int = 12) -> np.ndarray:
    """4096 x N, a face per column: a mean face far from zero, a rank-``rank`` part with
    distinct singular values, and a little noise (the eigenfaces check's input)."""
    rng = np.random.default_rng(seed)
    mean = 0.5 + 0.2 * rng.random(4096)
    basis, _ = np.linalg.qr(rng.normal(size=(4096, rank)))
    weights = rng.normal(size=(rank, faces)) * np.linspace(3.0, 0.6, rank)[:, None]
    return mean[:, None] + basis @ weights * 0.05 + rng.normal(0, 1e-3, (4096, faces))


def positive_images(seed: int, count: int = 20) -> np.ndarray:
    """Strictly positive images (N, 4096) in (0, 1]: any zero in a result was made by zeroing."""
    return np.random.default_rng(seed).uniform(0.05, 1.0, (count, 4096))
