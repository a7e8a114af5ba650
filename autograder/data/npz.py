"""A course's own ``.npz`` (or ``.npy``) file, declared in its rubric rather than written as a module.

Courses hand out arrays in one ``.npz`` file (train, validation and test images and labels,
say) whose keys and shapes only the course knows. A rubric declares such a file under
``npz:``: its name for ``datasets:``, the file, each array's shape and kind, which arrays the
kernel's view withholds (they are replaced by zeros of the same shape and dtype, so the
student's own evaluation code still runs, on meaningless labels), and the function of the
rubric's folder that writes a synthetic stand-in::

    npz:
      - name: digits
        file: digits.npz
        arrays:
          x_train: {shape: [null, 784], kind: number}
          y_train: {shape: [null], kind: int}
          x_test: {shape: [null, 784], kind: number}
          y_test: {shape: [null], kind: int}
        withheld: [y_test]
        standin: datagen:digits   # digits(scale, seed) -> {key: array}, in datagen.py

Files keep the course's own layout: an array saved under a positional key (``arr_0``, as
``np.savez(path, a, b)`` writes) is declared under that key with the ``name`` checks call it
by, and images stored one per column (``(784, N)``) say ``per: column``; checks always get
them by name with one item per row. A ``.npy`` file holds one array. ``holdout`` keeps the
last fraction of every array's items from the kernel (the checks measure on them)::

    npz:
      - name: q2
        file: hw2_Q2_data.npz
        arrays:
          arr_0: {name: x_train, shape: [784, null], kind: uint8, per: column}
          arr_1: {name: y_train, shape: [null], kind: int}

``NpzDataset`` gives such a declaration the interface of the dataset modules of this package
(``NAME``, ``WITHHELD``, ``synth``, ``missing``, ``stage``, ``heldout``), and ``declare``
puts it in the registry under its name.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

_KINDS = {"number": "biuf", "float": "f", "int": "iu", "uint8": "u"}


class NpzArray(BaseModel):
    """One array of the file: its shape in the file (null: any length on that axis), its
    kind, the name checks call it by, and where its items lie."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: list[int | None] | None = Field(default=None, description="null for the whole shape: any")
    kind: Literal["number", "float", "int", "uint8"] = "number"
    name: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="what checks call it (default: its key in the file)")
    per: Literal["row", "column"] = Field(default="row", description="column: one item per column, the last "
                                          "axis (checks get it transposed, one item per row)")

    def to_rows(self, array: np.ndarray) -> np.ndarray:
        return np.moveaxis(array, -1, 0) if self.per == "column" and array.ndim > 1 else array

    def from_rows(self, array: np.ndarray) -> np.ndarray:
        return np.moveaxis(array, 0, -1) if self.per == "column" and array.ndim > 1 else array

    def problem(self, array: np.ndarray) -> str | None:
        """What is wrong with ``array`` for this declaration, or None."""
        if array.dtype.kind not in _KINDS[self.kind] or self.kind == "uint8" and array.dtype != np.uint8:
            return f"holds {array.dtype}, should be {self.kind}"
        if self.shape is not None:
            fits = array.ndim == len(self.shape) and all(w is None or w == s for w, s in zip(self.shape, array.shape))
            if not fits:
                want = "(" + ", ".join("N" if w is None else str(w) for w in self.shape) + ")"
                return f"has shape {array.shape}, should be {want}"
        return None


class NpzSpec(BaseModel):
    """A rubric's declaration of a course ``.npz`` file (see the module's text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="what notebooks' datasets: call it")
    file: str = Field(pattern=r"^[^/\\]+\.np[yz]$")
    arrays: dict[str, NpzArray] = Field(min_length=1, description="by the key in the file (a .npy file: one array)")
    withheld: list[str] = Field(default_factory=list, description="arrays the kernel's view holds as zeros "
                                "(their keys or names)")
    holdout: float | None = Field(default=None, gt=0, lt=1, description="the last fraction of every array's items, "
                                  "left out of the kernel's view and kept for the checks")
    standin: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$",
                         description="module:function of the rubric's folder; function(scale, seed) returns "
                                     "the arrays of a synthetic stand-in")
    about: str = Field(default="", description="what the file is, for messages")

    @model_validator(mode="after")
    def _withheld_declared(self) -> NpzSpec:
        unknown = [key for key in self.withheld if key not in self.arrays and key not in self.names().values()]
        if unknown:
            raise ValueError(f"withheld names {', '.join(unknown)}, which arrays does not declare")
        names = list(self.names().values())
        if len(set(names)) != len(names):
            raise ValueError("two arrays have the same name")
        if self.file.endswith(".npy") and len(self.arrays) != 1:
            raise ValueError("a .npy file holds one array: declare exactly one")
        return self

    def names(self) -> dict[str, str]:
        """What checks call each array, by its key in the file."""
        return {key: array.name or key for key, array in self.arrays.items()}

    def withheld_keys(self) -> list[str]:
        names = self.names()
        return [key for key in self.arrays if key in self.withheld or names[key] in self.withheld]


class NpzDataset:
    """A declared ``.npz`` file with the interface of this package's dataset modules."""

    def __init__(self, spec: NpzSpec, *, owner: str, standin: Callable[[], Callable[..., dict[str, Any]]],
                 standin_file: Path | None = None) -> None:
        self.spec = spec
        self.owner = owner  # the assignment that declares it
        self._standin = standin  # resolves the stand-in function when one is first needed
        self._standin_file = standin_file
        self.NAME = spec.name
        hidden = [f"{', '.join(spec.withheld)} (zeros in the view)"] if spec.withheld else []
        if spec.holdout:
            hidden.append(f"the last {spec.holdout:.0%} of its items (left out)")
        self.WITHHELD = ", and ".join(hidden)
        self.__name__ = f"npz dataset {spec.name} of {owner}"

    def fingerprint(self) -> str:
        """Changes when the declaration or the stand-in's code changes (the synthetic cache's key)."""
        sha = hashlib.sha256(json.dumps(self.spec.model_dump(), sort_keys=True).encode())
        if self._standin_file is not None and self._standin_file.is_file():
            sha.update(self._standin_file.read_bytes())
        return sha.hexdigest()[:12]

    def problems(self, arrays: dict[str, Any], where: str) -> list[str]:
        """What ``arrays`` lack or hold wrongly for the declaration, naming ``where`` they came from."""
        found = []
        for key, declared in self.spec.arrays.items():
            if key not in arrays:
                found.append(f"{where} has no array {key!r} (it holds {', '.join(sorted(arrays)) or 'none'})")
                continue
            problem = declared.problem(np.asarray(arrays[key]))
            if problem:
                found.append(f"{where}: {key} {problem}")
        return found

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        """The arrays of the file at ``path``, by their keys; ValueError naming it when unreadable."""
        kind = path.suffix
        try:
            if kind == ".npy":
                return {next(iter(self.spec.arrays)): np.load(path, allow_pickle=False)}
            with np.load(path, allow_pickle=False) as opened:
                return {key: opened[key] for key in opened.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(f"{path} is not a readable {kind} file ({error})") from None

    def _write(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        """The file as the course wrote it: its keys, its layout."""
        if path.suffix == ".npy":
            np.save(path, next(iter(arrays.values())))
        else:
            np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool

    def _raw(self, folder: Path) -> dict[str, np.ndarray]:
        """Every declared array of ``folder``'s file by its key, as stored; ValueError naming the
        file when it is not as declared."""
        path = folder / self.spec.file
        arrays = self._read(path)
        problems = self.problems(arrays, str(path))
        if problems:
            raise ValueError("; ".join(problems))
        return {key: arrays[key] for key in self.spec.arrays}

    def load(self, folder: Path) -> dict[str, np.ndarray]:
        """Every declared array of ``folder``'s file, by its name, one item per row."""
        names = self.spec.names()
        return {names[key]: self.spec.arrays[key].to_rows(array) for key, array in self._raw(folder).items()}

    def _kept(self, count: int) -> int:
        """How many of ``count`` items the kernel's view holds."""
        if not self.spec.holdout:
            return count
        return count - max(1, round(count * self.spec.holdout))

    def synth(self, folder: Path, *, scale: str, seed: int) -> list[Path]:
        made = self._standin()(scale=scale, seed=seed)  # by name, one item per row
        names = self.spec.names()
        arrays = {key: self.spec.arrays[key].from_rows(np.asarray(made[names[key]])) if names[key] in made
                  else made.get(key) for key in self.spec.arrays}
        problems = self.problems({k: v for k, v in arrays.items() if v is not None},
                                 f"the stand-in {self.spec.standin} of {self.owner}")
        if problems:
            raise ValueError("; ".join(problems))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.spec.file
        self._write(path, {key: np.asarray(value) for key, value in arrays.items()})
        return [path]

    def missing(self, folder: Path) -> list[str]:
        if not (folder / self.spec.file).is_file():
            about = f" ({self.spec.about})" if self.spec.about else ""
            return [f"{folder / self.spec.file} is missing{about}"]
        try:
            self.load(folder)
        except ValueError as error:
            return [str(error)]
        return []

    def stage(self, source: Path, view: Path) -> None:
        arrays = self._raw(source)
        for key, declared in self.spec.arrays.items():
            rows = declared.to_rows(arrays[key])
            rows = rows[: self._kept(len(rows))] if rows.ndim else rows
            if key in self.spec.withheld_keys():
                rows = np.zeros_like(rows)
            arrays[key] = declared.from_rows(rows)
        self._write(view / self.spec.file, arrays)

    def heldout(self, source: Path) -> dict[str, np.ndarray]:
        """What the kernel never sees, by name (trusted side only): the withheld arrays, and
        with ``holdout`` the items left out of every array."""
        names = self.spec.names()
        withheld = {names[key] for key in self.spec.withheld_keys()}
        arrays = self.load(source)
        held = {name: array for name, array in arrays.items() if name in withheld}
        if self.spec.holdout:
            held.update({name: array[self._kept(len(array)):] for name, array in arrays.items()
                         if name not in withheld and array.ndim})
        return held

    def visible(self, source: Path) -> dict[str, np.ndarray]:
        """The arrays the view holds as they are, by name (withheld ones left out)."""
        names = self.spec.names()
        withheld = {names[key] for key in self.spec.withheld_keys()}
        return {name: (value[: self._kept(len(value))] if value.ndim else value)
                for name, value in self.load(source).items() if name not in withheld}

