"""A course's own ``.npz`` file, declared in its rubric rather than written as a module.

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
    """One array of the file: its shape (null: any length on that axis) and its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: list[int | None] | None = Field(default=None, description="null for the whole shape: any")
    kind: Literal["number", "float", "int", "uint8"] = "number"

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
    file: str = Field(pattern=r"^[^/\\]+\.npz$")
    arrays: dict[str, NpzArray] = Field(min_length=1)
    withheld: list[str] = Field(default_factory=list, description="arrays the kernel's view holds as zeros")
    standin: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$",
                         description="module:function of the rubric's folder; function(scale, seed) returns "
                                     "the arrays of a synthetic stand-in")
    about: str = Field(default="", description="what the file is, for messages")

    @model_validator(mode="after")
    def _withheld_declared(self) -> NpzSpec:
        unknown = [key for key in self.withheld if key not in self.arrays]
        if unknown:
            raise ValueError(f"withheld names {', '.join(unknown)}, which arrays does not declare")
        return self


class NpzDataset:
    """A declared ``.npz`` file with the interface of this package's dataset modules."""

    def __init__(self, spec: NpzSpec, *, owner: str, standin: Callable[[], Callable[..., dict[str, Any]]],
                 standin_file: Path | None = None) -> None:
        self.spec = spec
        self.owner = owner  # the assignment that declares it
        self._standin = standin  # resolves the stand-in function when one is first needed
        self._standin_file = standin_file
        self.NAME = spec.name
        self.WITHHELD = f"{', '.join(spec.withheld)} (zeros in the view)" if spec.withheld else ""
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

    def load(self, folder: Path) -> dict[str, np.ndarray]:
        """Every declared array of ``folder``'s file; ValueError naming the file when it is not as declared."""
        path = folder / self.spec.file
        try:
            with np.load(path, allow_pickle=False) as opened:
                arrays = {key: opened[key] for key in opened.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(f"{path} is not a readable .npz file ({error})") from None
        problems = self.problems(arrays, str(path))
        if problems:
            raise ValueError("; ".join(problems))
        return {key: arrays[key] for key in self.spec.arrays}

    def synth(self, folder: Path, *, scale: str, seed: int) -> list[Path]:
        arrays = self._standin()(scale=scale, seed=seed)
        problems = self.problems(arrays, f"the stand-in {self.spec.standin} of {self.owner}")
        if problems:
            raise ValueError("; ".join(problems))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.spec.file
        np.savez(path, **{key: np.asarray(arrays[key]) for key in self.spec.arrays})  # type: ignore[arg-type]
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
        arrays = self.load(source)
        for key in self.spec.withheld:
            arrays[key] = np.zeros_like(arrays[key])
        np.savez(view / self.spec.file, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool

    def heldout(self, source: Path) -> dict[str, np.ndarray]:
        """The withheld arrays, by key (trusted side only)."""
        arrays = self.load(source)
        return {key: arrays[key] for key in self.spec.withheld}

    def visible(self, source: Path) -> dict[str, np.ndarray]:
        """The arrays the view holds as they are (withheld ones left out)."""
        arrays = self.load(source)
        return {key: value for key, value in arrays.items() if key not in self.spec.withheld}

