"""Find an assignment's files: rubric, checks, reference solutions, templates, public data.

An assignment is named by its id (``ece4179-2023``), looked up under the project's
``rubrics/`` folder, or by the path of a folder holding a ``rubric.yaml``. The layout:

    rubrics/<id>/rubric.yaml          points, items, policy, limits
    rubrics/<id>/checks/check_*.py    the pytest checks (trusted side only)
    rubrics/<id>/*.py                 trusted helpers the checks load (data generators...)
    reference_solutions/<id>/*.ipynb  solution notebooks with solution markers
    student_templates/<id>/           generated from the references, plus public data
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from types import ModuleType
from typing import Any

from ..data import declare
from ..data.npz import NpzDataset
from ..data.stl10 import SplitDataset
from ..errors import UsageError
from .rubric import Rubric, load_rubric

HOME_ENV = "AUTOGRADER_HOME"


def project_home() -> Path:
    """The folder holding ``rubrics/``, ``reference_solutions/`` and ``student_templates/``."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parents[2]


def available() -> list[str]:
    rubrics = project_home() / "rubrics"
    if not rubrics.is_dir():
        return []
    return sorted(p.parent.name for p in rubrics.glob("*/rubric.yaml"))


@dataclass(frozen=True)
class Assignment:
    """An assignment's rubric and the folders that belong to it."""

    rubric_path: Path
    home: Path = field(default_factory=project_home)

    @cached_property
    def rubric(self) -> Rubric:
        rubric = load_rubric(self.rubric_path)
        self.__dict__["rubric"] = rubric  # what cached_property stores, before declare_datasets reads it
        self.declare_datasets()
        return rubric

    @cached_property
    def _declared(self) -> list[NpzDataset | SplitDataset]:
        rubric = self.rubric
        declared: list[NpzDataset | SplitDataset] = []
        for spec in rubric.npz:
            module, function = spec.standin.split(":")
            declared.append(NpzDataset(spec, owner=rubric.assignment, standin_file=self.folder / f"{module}.py",
                                       standin=partial(self.function, module, function)))
        declared += [SplitDataset(split, owner=rubric.assignment) for split in rubric.stl10]
        return declared

    def declare_datasets(self) -> None:
        """Make this rubric's own datasets the ones known by their names (as the modules are),
        again where another copy of the assignment declared them since: what grading this
        assignment opens is its own stand-in and declaration."""
        for declared in self._declared:
            declare(declared)

    def dataset(self, name: str) -> Any:
        """The dataset ``name`` (a module of ``autograder.data`` or one this rubric declares)."""
        from ..data import dataset

        self.declare_datasets()
        return dataset(name)

    def function(self, module: str, name: str) -> Any:
        """``name`` of the trusted helper ``<rubric folder>/<module>.py``."""
        found = getattr(self.module(module), name, None)
        if not callable(found):
            raise UsageError(f"assignment {self.id}: {self.folder / (module + '.py')} defines no function {name}")
        return found

    @property
    def id(self) -> str:
        return self.rubric.assignment

    @property
    def folder(self) -> Path:
        return self.rubric_path.parent

    @property
    def checks_dir(self) -> Path:
        return self.folder / "checks"

    @property
    def reference_dir(self) -> Path:
        return self.home / "reference_solutions" / self.id

    @property
    def templates_dir(self) -> Path:
        return self.home / "student_templates" / self.id

    @property
    def public_data_dir(self) -> Path | None:
        spec = self.rubric.data
        return (self.folder / spec.public).resolve() if spec else None

    @property
    def variants_path(self) -> Path:
        return self.folder / "variants.yaml"

    def module(self, name: str) -> ModuleType:
        """Import the trusted helper ``<rubric folder>/<name>.py`` (once per process)."""
        folder_key = hashlib.sha1(str(self.folder).encode()).hexdigest()[:10]
        qualified = f"autograder_assignments.{self.id.replace('-', '_')}_{folder_key}.{name}"
        if qualified in sys.modules:
            return sys.modules[qualified]
        path = self.folder / f"{name}.py"
        spec = importlib.util.spec_from_file_location(qualified, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise UsageError(f"assignment {self.id} has no helper module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[qualified]
            raise
        return module


def load_assignment(ref: str | Path) -> Assignment:
    """Resolve an id or a folder (or a rubric.yaml path) to an ``Assignment``."""
    path = Path(ref)
    if path.is_file() and path.name == "rubric.yaml":
        return Assignment(path.resolve())
    if (path / "rubric.yaml").is_file():
        return Assignment((path / "rubric.yaml").resolve())
    candidate = project_home() / "rubrics" / str(ref) / "rubric.yaml"
    if candidate.is_file():
        return Assignment(candidate)
    known = ", ".join(available()) or "none found"
    raise UsageError(
        f"unknown assignment {str(ref)!r}: give an assignment id (known: {known}) "
        f"or a folder containing rubric.yaml"
    )
