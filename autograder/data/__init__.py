"""Datasets in their real on-disk formats: loaders, synthetic stand-ins, and the view a
student's kernel gets, from which held-out labels are removed. Nothing here downloads anything.

A dataset is one module in this package; the registry (``DATASETS``) finds it by its
``NAME``, and a rubric's ``datasets:`` may name it from then on. A dataset module has:

- ``NAME``: what rubrics call it;
- ``WITHHELD``: what the kernel's view lacks, in words ("" when it hides nothing);
- ``synth(folder, *, scale, seed)``: write a stand-in in exactly the real layout, return its top entries;
- ``missing(folder)``: what ``folder`` lacks to hold the dataset, one line per problem;
- ``stage(source, view)``: copy what the kernel may see into ``view``;
- ``heldout(source)``, when ``WITHHELD``: the withheld part, for checks (trusted side only).

A rubric may also declare a course's own ``.npz`` file (``npz.py``) or its own split of
STL10 (``stl10.SplitSpec``): loading the rubric declares it here, under its name, beside
the modules.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import UsageError
from .npz import NpzDataset
from .stl10 import SplitDataset

_HELPERS = {"context", "files", "npz"}  # modules of this package that are not datasets


def registry(paths: list[str], package: str) -> dict[str, ModuleType]:
    """The dataset modules of ``package`` (found on ``paths``), by ``NAME``."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(paths), key=lambda m: m.name):
        if info.name in _HELPERS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        name = getattr(module, "NAME", None)
        lacking = [part for part in ("NAME", "WITHHELD", "synth", "missing", "stage") if not hasattr(module, part)]
        if getattr(module, "WITHHELD", "") and not hasattr(module, "heldout"):
            lacking.append("heldout")
        if lacking:
            raise ImportError(f"{module.__name__} is not a dataset module: it lacks {', '.join(lacking)}")
        if name in found:
            raise ImportError(f"{module.__name__} and {found[name].__name__} are both dataset {name!r}")
        found[str(name)] = module
    return found


#: Every dataset, by the name rubrics use: the modules of this package.
DATASETS: dict[str, ModuleType] = registry(list(__path__), __name__)
SCALES = ("small", "full")
#: Datasets rubrics declare (``npz:``), by name: added as each rubric is loaded.
DECLARED: dict[str, NpzDataset | SplitDataset] = {}


def declare(declared: NpzDataset | SplitDataset) -> None:
    """Make a rubric's declared dataset known by its name (again, when the rubric is loaded again)."""
    name = declared.NAME
    if name in DATASETS:
        raise UsageError(f"{declared.owner} declares dataset {name!r}, which is a dataset module's name")
    previous = DECLARED.get(name)
    if previous is not None and previous.owner != declared.owner:
        raise UsageError(f"dataset {name!r} is declared by both {previous.owner} and {declared.owner}: "
                         "give one of them another name")
    DECLARED[name] = declared


def dataset(name: str) -> Any:
    """The dataset module, or declared dataset, called ``name``."""
    found = DATASETS.get(name) or DECLARED.get(name)
    if found is None:
        known = ", ".join([*DATASETS, *DECLARED])
        raise UsageError(f"unknown dataset {name!r}; known: {known}") from None
    return found


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


def downloads(names: list[str], view: Path) -> dict[str, str]:
    """What the datasets ``names`` answer of their downloaders' fetches (``DOWNLOADS`` of a
    dataset module: the end of the path a download is saved to -> the file or folder of the
    view; a ``./`` in it is kept, marking where an archive's own paths begin)."""
    found = {fetched: os.path.join(view, answer) for name in names
             for fetched, answer in getattr(dataset(name), "DOWNLOADS", {}).items()}
    for name in names:  # what a dataset serves of the files the view holds (weights/ of hub names)
        found.update(getattr(dataset(name), "served", lambda _: {})(view))
    return found


def stage(names: list[str], source: Path, view: Path) -> None:
    """Build the kernel's view of ``source``: every dataset in ``names``, held-out labels removed."""
    view.mkdir(parents=True, exist_ok=True)
    for name in names:
        dataset(name).stage(source, view)
