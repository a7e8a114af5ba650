"""Turn command-line paths into submissions: a notebook, a folder or a zip per student.

A folder that directly holds notebooks is one submission; a folder that holds none is a
batch, each entry (folder, zip or notebook) a submission. Zips are extracted with limits
on size, ratio and count; entries that would escape the folder, and links, are refused.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import UsageError

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 2 << 30
MAX_RATIO = 200
_IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}


@dataclass
class Submission:
    """One student's files, in a folder the grader may read."""

    id: str
    source: Path
    root: Path | None
    problem: str = ""  # why nothing can be graded (unreadable zip, ...)
    notes: list[str] = field(default_factory=list)  # entries skipped during extraction
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    def notebooks(self) -> list[Path]:
        if self.root is None:
            return []
        if self.root.is_file():
            return [self.root]
        found = [
            path
            for path in self.root.rglob("*.ipynb")
            if path.is_file() and not (_IGNORED_PARTS & set(path.relative_to(self.root).parts))
        ]
        return sorted(found, key=lambda p: (len(p.relative_to(self.root).parts), str(p)))

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def submission_id(path: Path) -> str:
    stem = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
    stem = stem[: -len(".ipynb")] if stem.lower().endswith(".ipynb") else stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "submission"


def digest(path: Path) -> str:
    """A fingerprint of the submitted files, to know whether a stored result is still current."""
    sha = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        sha.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


def _is_submission(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".zip", ".ipynb")


def normal_name(name: str) -> str:
    """A notebook name without case, punctuation or extension: 'Q3 Regression.ipynb' -> 'q3regression'."""
    return re.sub(r"[^a-z0-9]", "", name.lower().removesuffix(".ipynb"))


def _holds_notebooks(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*.ipynb") if not _IGNORED_PARTS & set(p.parts))


def _is_one_submission(folder: Path, expected: list[str]) -> bool:
    """Whether a folder is one student's work rather than a batch of submissions."""
    direct = [c for c in folder.iterdir() if c.is_file() and c.suffix.lower() == ".ipynb"]
    if not direct:
        return False
    wanted = {normal_name(name) for name in expected}
    if any(normal_name(c.name) in wanted for c in direct):
        return True
    if len(expected) == 1 and len(direct) > 1:
        return False  # several notebooks for a one-notebook assignment: one per student
    nested = [c for c in folder.iterdir() if (c.is_dir() and _holds_notebooks(c)) or c.suffix.lower() == ".zip"]
    return not nested


def discover(paths: list[Path], expected: list[str]) -> list[Path]:
    """Expand batch folders into the submissions they hold; check that every path exists.

    ``expected`` are the notebook names the rubric asks for: a folder whose notebooks
    carry them is one student's submission, as is a folder of notebooks alone.
    """
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_file() or _is_one_submission(path, expected):
            found.append(path)
            continue
        entries = sorted(c for c in path.iterdir() if (c.is_dir() and _holds_notebooks(c)) or _is_submission(c))
        entries = [c for c in entries if c.name not in _IGNORED_PARTS and not c.name.startswith(".")]
        if not entries:
            raise UsageError(f"{path}: holds no notebooks, zips or submission folders")
        found.extend(entries)
    return found


def _safe_member(info: zipfile.ZipInfo) -> PurePosixPath | None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        return None
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def _extract(zip_path: Path, target: Path, notes: list[str]) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise zipfile.BadZipFile(f"it holds {len(members)} entries (limit {MAX_MEMBERS})")
        total = sum(m.file_size for m in members)
        if total > MAX_TOTAL_BYTES:
            raise zipfile.BadZipFile(f"it unpacks to {total} bytes (limit {MAX_TOTAL_BYTES})")
        for info in members:
            relative = _safe_member(info)
            mode = info.external_attr >> 16
            if relative is None or not relative.parts:
                notes.append(f"skipped {info.filename!r}: its path leaves the submission folder")
                continue
            if stat.S_ISLNK(mode):
                notes.append(f"skipped {info.filename!r}: links are not extracted")
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
                notes.append(f"skipped {info.filename!r}: compressed {info.file_size // info.compress_size}:1")
                continue
            destination = target.joinpath(*relative.parts)
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)


def open_submission(path: Path, *, ident: str | None = None) -> Submission:
    """Read one submission; an unreadable one comes back with ``problem`` set, never raises."""
    ident = ident or submission_id(path)
    if path.is_dir():
        return Submission(ident, path, path)
    if path.suffix.lower() == ".ipynb":
        return Submission(ident, path, path)
    if path.suffix.lower() != ".zip":
        return Submission(ident, path, None, problem=f"{path.name}: not a notebook, folder or zip")
    scratch = tempfile.TemporaryDirectory(prefix="autograder-zip-")
    notes: list[str] = []
    try:
        _extract(path, Path(scratch.name), notes)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        scratch.cleanup()
        return Submission(ident, path, None, problem=f"{path.name} cannot be unpacked: {error}")
    return Submission(ident, path, Path(scratch.name), notes=notes, _scratch=scratch)
