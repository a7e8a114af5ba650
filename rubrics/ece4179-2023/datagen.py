"""Deterministic data for question 3 of ece4179-2023.

Public files (shipped to students in ``student_templates/ece4179-2023/data``), as the
course's own files are laid out (``../shared/assignments/real-courses.md``):
  Task1_1.npz  Task 1.1: noisy training set with one-sided outliers (X_trn, Y_trn) and a
               clean validation set (X_val, Y_val); the target is a cubic, so linear
               features cannot explain it.
  Task1_2.npz  Task 1.2: two rings, not linearly separable, saved by position as
               np.savez(path, X_train, X_test, Y_train, Y_test): arr_0 ... arr_3.

Held-out sets come from the same distributions with seeds that exist only here, on the
grader's side; their labels never enter a student's kernel.

Regenerate the public files with ``autograder templates ece4179-2023``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REGRESSION_FILE = "Task1_1.npz"
CLASSIFICATION_FILE = "Task1_2.npz"
_PUBLIC_SEED = 4179
_HELDOUT_SEED = 517_923


def target(x: np.ndarray) -> np.ndarray:
    """The noise-free function behind the regression data."""
    return 0.5 * x**3 - x**2 - 2.0 * x + 1.0


def _regression_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.sort(rng.uniform(-3.0, 3.0, n))


def regression(seed: int = _PUBLIC_SEED, n_train: int = 200, n_val: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x_trn = _regression_inputs(rng, n_train)
    y_trn = target(x_trn) + rng.normal(0.0, 0.3, n_train)
    outliers = rng.random(n_train) < 0.2
    y_trn[outliers] += rng.uniform(8.0, 20.0, int(outliers.sum()))  # one-sided: pulls a plain fit up
    x_val = _regression_inputs(rng, n_val)
    return {"x_trn": x_trn, "y_trn_noisy": y_trn, "x_val": x_val, "y_val": target(x_val)}


def rings(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 in a disc of radius 1.1, class 0 on a ring from 1.25 to 2.2, with jitter."""
    labels = (rng.random(n) < 0.5).astype(np.int64)
    radius = np.where(labels == 1, 1.1 * np.sqrt(rng.random(n)), rng.uniform(1.25, 2.2, n))
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points + rng.normal(0.0, 0.08, points.shape), labels


def classification(seed: int = _PUBLIC_SEED + 1, n_train: int = 300, n_test: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X_train, y_train = rings(rng, n_train)
    X_test, y_test = rings(rng, n_test)
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


def regression_heldout(n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Clean held-out pairs for Task 1.1 (grader only)."""
    x = _regression_inputs(np.random.default_rng(_HELDOUT_SEED), n)
    return x, target(x)


def classification_heldout(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Held-out points and labels for Task 1.2 (grader only)."""
    return rings(np.random.default_rng(_HELDOUT_SEED + 1), n)


def public_files() -> dict[str, dict[str, np.ndarray]]:
    """The public files by name, each array under the key the course's file has."""
    reg, cls = regression(), classification()
    return {
        REGRESSION_FILE: {"X_trn": reg["x_trn"], "Y_trn": reg["y_trn_noisy"], "X_val": reg["x_val"],
                          "Y_val": reg["y_val"]},
        CLASSIFICATION_FILE: {"arr_0": cls["X_train"], "arr_1": cls["X_test"], "arr_2": cls["y_train"],
                              "arr_3": cls["y_test"]},
    }


def write_public(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, arrays in public_files().items():
        np.savez(folder / name, **arrays)
        written.append(folder / name)
    return written
