"""Root causes of a notebook's failed cells, read on the grader's side from the cells'
source and the errors the run recorded (never from what the kernel says about itself).

One missing module in the import cell, one checkpoint the submission lacks or one
``.cuda()`` on a machine without a GPU makes every later cell that needs what it would
have defined fail too. A marker needs the cause, not thirty failures: each cause is
reported once with the cells that failed because of it ("code cell 1 imports
`torchsummary`, which is not in the grading environment; 31 later cells failed because of
it"), and each follower's note names its cause.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .execute import CellRun, NotebookRun
from .names import bound_names, parse_cell
from .record import FOLLOWS, CellStatus

_NAME_ERROR = re.compile(r"name '(\w+)' is not defined")
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_NO_FILE = re.compile(r"No such file or directory: '([^']+)'")
_GPU = re.compile(r"not compiled with CUDA|no NVIDIA driver|NVIDIA driver on your system|no CUDA GPUs|CUDA driver"
                  r"|deserialize object on a CUDA device|cuda(?:Get|Set)Device|Found no NVIDIA", re.IGNORECASE)
_GPU_CODE = re.compile(r"\.cuda\(\)|\.cuda\(\w*\)|[\"']cuda(?::\d+)?[\"']|torch\.cuda\.get_device_name")


@dataclass
class Cause:
    """One root cause: the cell it lies in, what it is, and the cells that failed because of it."""

    cell: int
    text: str
    followers: list[int] = field(default_factory=list)

    def sentence(self) -> str:
        text = self.text
        if self.followers:
            count = len(self.followers)
            text += f"; {count} later {'cell' if count == 1 else 'cells'} failed because of it"
        return text


def top_level_imports(source: str) -> dict[str, list[str]]:
    """The modules a cell imports at its top level, each with the names the import binds."""
    tree = parse_cell(source)
    if tree is None:
        return {}
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, []).append(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.setdefault(node.module, []).extend(a.asname or a.name for a in node.names if a.name != "*")
    return found


def module_available(local: Iterable[str] = ()) -> Callable[[str], bool]:
    """Whether a module can be imported in grading: in the grading environment, or a
    module of the submission's folder (``local``: its top-level names)."""
    here = set(local)

    def available(module: str) -> bool:
        top = module.split(".")[0]
        if top in here:
            return True
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            return False

    return available


def local_modules(folder: Path) -> set[str]:
    """The modules a notebook in ``folder`` can import from its own folder."""
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}


def _gpu_use(source: str) -> str:
    match = _GPU_CODE.search(source)
    return f"`{match.group(0)}`" if match else ""


def root_causes(run: NotebookRun, available: Callable[[str], bool]) -> list[Cause]:
    """The causes of ``run``'s failed cells, in cell order; each follower cell's ``note``
    is set to name its cause."""
    causes: list[Cause] = []
    cause_of: dict[int, Cause] = {}  # cell number -> the cause it failed because of
    missing_names: dict[str, Cause] = {}  # a name bound only by a missing import -> its cause
    missing_modules: dict[str, Cause] = {}
    gpu: Cause | None = None
    reported: list[Cause] = []
    for cell in run.cells:
        for module, names in top_level_imports(cell.source).items():
            if available(module):
                continue
            top = module.split(".")[0]
            cause = missing_modules.get(top)
            if cause is None:
                cause = Cause(cell.number, f"{cell.label} imports `{module}`, which is not in the grading "
                                           "environment nor a file of the submission")
                causes.append(cause)
                reported.append(cause)
                missing_modules[top] = cause
            for name in names:
                missing_names[name] = cause
        if cell.status is not CellStatus.ERROR:
            continue
        cause = _cause_of(cell, run, cause_of, missing_names, missing_modules)
        if cause is None and _GPU.search(cell.evalue):
            if gpu is None:
                where = _gpu_use(cell.source)
                gpu = Cause(cell.number, f"{cell.label} needs a GPU" + (f": {where}" if where else "")
                            + " (this grading has none)")
                causes.append(gpu)
                reported.append(gpu)
                cause_of[cell.number] = gpu
                run.needs_gpu = gpu.text
                continue
            cause = gpu
        if cause is not None:
            cause.followers.append(cell.number)
            cause_of[cell.number] = cause
            if not cell.note:
                cell.note = f"{FOLLOWS}{_label(cause)}"
            continue
        text, habit = _own_cause(cell, run)
        if cell.ename in ("FileNotFoundError", "OSError", "IOError") and habit:
            run.lacks_files.append(text)
        cause = Cause(cell.number, text)
        causes.append(cause)
        cause_of[cell.number] = cause
        if habit:
            reported.append(cause)
    return [c for c in causes if c in reported or c.followers]


def _label(cause: Cause) -> str:
    return f"code cell {cause.cell}"


def _cause_of(cell: CellRun, run: NotebookRun, cause_of: dict[int, Cause], missing_names: dict[str, Cause],
              missing_modules: dict[str, Cause]) -> Cause | None:
    """The earlier cause this failed cell follows from, if any."""
    if cell.ename == "ModuleNotFoundError":
        match = _NO_MODULE.search(cell.evalue)
        if match and match.group(1).split(".")[0] in missing_modules:
            return missing_modules[match.group(1).split(".")[0]]
    if cell.ename == "NameError":
        match = _NAME_ERROR.search(cell.evalue)
        if not match:
            return None
        name = match.group(1)
        definers = [c for c in run.cells if c.number < cell.number and name in bound_names(c.source)]
        if not definers:
            return missing_names.get(name)
        last = definers[-1]
        if last.number in cause_of:
            return cause_of[last.number]
        if name in missing_names and all(c.status is CellStatus.OK for c in definers):
            return missing_names[name]
    return None


def _own_cause(cell: CellRun, run: NotebookRun) -> tuple[str, bool]:
    """What a failed cell that follows from no earlier one is about, and whether it is one
    of the habits a marker meets again and again (a missing file, a name defined only
    later) rather than an error the cell's own message says well enough."""
    if cell.ename == "ModuleNotFoundError":
        match = _NO_MODULE.search(cell.evalue)
        if match:
            return (f"{cell.label} imports `{match.group(1)}`, which is not in the grading environment nor a file "
                    "of the submission"), True
    if cell.ename in ("FileNotFoundError", "OSError", "IOError"):
        match = _NO_FILE.search(cell.evalue)
        if match:
            return f"{cell.label} reads `{match.group(1)}`, which the submission does not contain", True
    if cell.ename == "NameError":
        match = _NAME_ERROR.search(cell.evalue)
        if match:
            name = match.group(1)
            later = [c for c in run.cells if c.number > cell.number and name in bound_names(c.source)]
            if later:
                return f"{cell.label} uses `{name}`, which only a later cell ({later[0].label}) defines", True
            if not any(name in bound_names(c.source) for c in run.cells):
                return f"{cell.label} uses `{name}`, which no cell of the notebook defines", True
    return f"{cell.label} failed with {cell.ename}: {cell.evalue}".rstrip(": "), False
