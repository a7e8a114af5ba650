"""Datasets in their real on-disk formats: loaders, synthetic stand-ins, and the view a
student's kernel gets, from which held-out labels are removed.

Each dataset module offers ``synth(folder, scale, seed)`` (write a stand-in in exactly
the real layout), ``missing(folder)`` (what a folder lacks to hold the dataset),
``stage(source, view)`` (copy what the kernel may see), ``WITHHELD`` (what the view
lacks, in words) and trusted accessors for the held-out part. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ..errors import UsageError
from . import faces, fashionmnist, gtsrb, landmarks, svhn, weights

DATASETS: dict[str, ModuleType] = {
    "gtsrb": gtsrb,
    "faces": faces,
    "landmarks": landmarks,
    "weights": weights,
    "fashionmnist": fashionmnist,
    "svhn": svhn,
}
SCALES = ("small", "full")


def dataset(name: str) -> ModuleType:
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def synth(name: str, folder: Path, *, scale: str = "small", seed: int = 0) -> list[Path]:
    """Write a synthetic stand-in for ``name`` into ``folder``; return the top-level entries."""
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    folder.mkdir(parents=True, exist_ok=True)
    return dataset(name).synth(folder, scale=scale, seed=seed)


def missing(names: list[str], folder: Path) -> list[str]:
    """What ``folder`` lacks to hold every dataset in ``names``, one line per problem."""
    return [problem for name in names for problem in dataset(name).missing(folder)]


def withheld(names: list[str]) -> dict[str, str]:
    """What the kernel's view lacks of each dataset in ``names``, in words; none for a dataset that hides nothing."""
    return {name: dataset(name).WITHHELD for name in names if dataset(name).WITHHELD}


def stage(names: list[str], source: Path, view: Path) -> None:
    """Build the kernel's view of ``source``: every dataset in ``names``, held-out labels removed."""
    view.mkdir(parents=True, exist_ok=True)
    for name in names:
        dataset(name).stage(source, view)
