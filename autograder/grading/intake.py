"""Turn command-line paths into submissions: a notebook, a folder or a zip per student,
or a Moodle "Download all submissions" zip or folder.

A folder that directly holds notebooks is one submission; a folder that holds none is a
batch, each entry (folder, zip or notebook) a submission. A Moodle download is split by
student (see ``moodle``). Zips are extracted with limits on size, ratio and count;
entries that would escape the folder, and links, are refused; a student's zip inside
their submission (notebooks, HTML exports, a PDF) is unpacked beside it. What was refused
becomes a note of the submission it concerns (a finding in its results); a zip given on
the command line that cannot be read or holds nothing to grade is an input problem.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import UsageError
from .moodle import Student as Student  # who submitted: a record of intake
from .moodle import is_download, parse_entry, split_download

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 2 << 30
MAX_RATIO = 200
_IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError)


@dataclass
class Submission:
    """One student's files, in a folder the grader may read."""

    id: str
    source: Path
    root: Path | None
    problem: str = ""  # why nothing can be graded (unreadable zip, ...)
    notes: list[str] = field(default_factory=list)  # entries skipped during extraction
    uploaded: list[str] = field(default_factory=list)  # the names of the files the student handed in
    student: Student | None = None
    _scratch: tempfile.TemporaryDirectory[str] | None = None
    _digest: str = ""

    @property
    def digest(self) -> str:
        """The fingerprint of the files handed in (``source``), computed once."""
        if not self._digest:
            self._digest = digest(self.source)
        return self._digest

    def files(self) -> list[Path]:
        """Every file of the submission, nested zips' contents included."""
        if self.root is None:
            return []
        if self.root.is_file():
            return [self.root]
        return sorted(p for p in self.root.rglob("*") if p.is_file() and not _IGNORED_PARTS & set(p.parts))

    def notebooks(self) -> list[Path]:
        if self.root is None:
            return []
        if self.root.is_file():
            return [self.root]
        root = self.root
        found = [
            path
            for path in root.rglob("*.ipynb")
            if path.is_file() and not (_IGNORED_PARTS & set(path.relative_to(root).parts))
        ]
        return sorted(found, key=lambda p: (len(p.relative_to(root).parts), str(p)))

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


def check_inputs(paths: Sequence[Path]) -> None:
    """Refuse, before anything slow, paths that do not exist."""
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")


def notebook_names(paths: Sequence[Path]) -> list[PurePosixPath]:
    """Every notebook under ``paths``, found without unpacking anything: a folder's files,
    a zip's entries and those of the zips inside it (a Moodle download's students' zips).
    Cheap, for deciding before the intake what a batch will need; what cannot be read is
    left out (it is an input problem, found by the intake)."""
    found: list[PurePosixPath] = []
    for path in paths:
        if path.is_dir():
            for child in path.rglob("*"):
                if _IGNORED_PARTS & set(child.relative_to(path).parts) or not child.is_file():
                    continue
                if child.suffix.lower() == ".ipynb":
                    found.append(PurePosixPath(child.relative_to(path).as_posix()))
                elif child.suffix.lower() == ".zip":
                    found += _zip_notebooks(child, depth=1)
        elif path.suffix.lower() == ".ipynb":
            found.append(PurePosixPath(path.name))
        elif path.suffix.lower() == ".zip":
            found += _zip_notebooks(path, depth=2)
    return found


def _zip_notebooks(source: Path | IO[bytes], *, depth: int) -> list[PurePosixPath]:
    """The notebooks a zip lists, and (``depth`` levels down) those of the zips it holds."""
    found: list[PurePosixPath] = []
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if info.is_dir() or _IGNORED_PARTS & set(name.parts):
                    continue
                if name.suffix.lower() == ".ipynb":
                    found.append(name)
                elif name.suffix.lower() == ".zip" and depth > 1:
                    with archive.open(info) as inner:
                        found += [name.parent / inside for inside in _zip_notebooks(inner, depth=depth - 1)]
    except _UNREADABLE:
        pass
    return found


def discover(paths: list[Path], expected: list[str]) -> list[Path]:
    """Expand batch folders into the submissions they hold; check that every path exists.

    ``expected`` are the notebook names the rubric asks for: a folder whose notebooks
    carry them is one student's submission, as is a folder of notebooks alone.
    """
    check_inputs(paths)
    found: list[Path] = []
    for path in paths:
        if path.is_file() or _is_one_submission(path, expected):
            found.append(path)
            continue
        entries = sorted(c for c in path.iterdir() if (c.is_dir() and _holds_notebooks(c)) or _is_submission(c))
        entries = [c for c in entries if c.name not in _IGNORED_PARTS and not c.name.startswith(".")]
        if not entries:
            raise UsageError(f"{path}: holds no notebooks, zips or submission folders")
        found.extend(entries)
    return found


def _member_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; zips made without the UTF-8 flag are decoded as cp437 by Python,
    so a name that is UTF-8 underneath is recovered, and any other is kept as decoded."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def _safe_member(info: zipfile.ZipInfo) -> PurePosixPath | None:
    name = _member_name(info).replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        return None
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


@dataclass(frozen=True)
class Refused:
    """A zip entry that was not extracted, and the note saying why."""

    entry: str  # its name in the zip, decoded
    text: str

    @property
    def top(self) -> str:
        """The entry's first path part: in a Moodle download, the student's entry name."""
        parts = [part for part in self.entry.replace("\\", "/").split("/") if part not in ("", ".")]
        return parts[0] if parts else ""


def _extract(zip_path: Path, target: Path) -> list[Refused]:
    """Unpack a zip into ``target``; what was refused comes back, one note per entry."""
    refused: list[Refused] = []
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
                refused.append(Refused(_member_name(info), f"skipped {info.filename!r}: its path leaves the "
                                                           "submission folder"))
                continue
            skipped = ""
            if stat.S_ISLNK(mode):
                skipped = f"skipped {info.filename!r}: links are not extracted"
            elif info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
                skipped = f"skipped {info.filename!r}: compressed {info.file_size // info.compress_size}:1"
            if skipped:
                refused.append(Refused(_member_name(info), skipped))
                target.joinpath(*relative.parts[:-1]).mkdir(parents=True, exist_ok=True)  # its folder still counts
                continue
            destination = target.joinpath(*relative.parts)
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
    return refused


def _unpack_nested(root: Path, notes: list[str]) -> None:
    """Unpack each zip a student put in their submission into a folder beside it (one level)."""
    for archive in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".zip"):
        if _IGNORED_PARTS & set(archive.relative_to(root).parts):
            continue
        target = archive.with_name(archive.stem)
        while target.exists():
            target = target.with_name(target.name + "_unpacked")
        try:
            notes += [refused.text for refused in _extract(archive, target)]
        except _UNREADABLE as error:
            notes.append(f"{archive.relative_to(root)} cannot be unpacked: {error}")
            continue
        for inner in target.rglob("*.zip"):
            notes.append(f"{inner.relative_to(root)}: a zip inside a zip inside the submission; not unpacked")


def _holds_zips(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*.zip") if not _IGNORED_PARTS & set(p.relative_to(folder).parts))


def open_submission(source: Path | Candidate, *, ident: str | None = None, student: Student | None = None,
                    notes: Sequence[str] = ()) -> Submission:
    """Read one submission (a path, or a candidate a batch's intake found); an unreadable
    one comes back with ``problem`` set, never raises. ``notes`` (what the intake found
    about its files) come before the submission's own."""
    if isinstance(source, Candidate):
        submission = _open(source.path, ident or source.id, student or source.student, owned=source.owned)
        submission._digest = source.digest
        notes = [*source.notes, *notes]
    else:
        submission = _open(source, ident or submission_id(source), student)
    submission.notes[:0] = list(notes)
    return submission


def _open(path: Path, ident: str, student: Student | None, *, owned: bool = False) -> Submission:
    """``owned``: the files are the intake's own copy, its zips already unpacked beside them
    (see ``Intake``): they are used where they are."""
    if path.is_dir():
        uploaded = sorted(c.name for c in path.iterdir() if c.is_file())
        if owned or not _holds_zips(path):
            return Submission(ident, path, path, uploaded=uploaded, student=student)
        notes: list[str] = []
        scratch = tempfile.TemporaryDirectory(prefix="autograder-sub-")
        copy = Path(scratch.name) / "files"
        shutil.copytree(path, copy, symlinks=True)
        _unpack_nested(copy, notes)
        return Submission(ident, path, copy, notes=notes, uploaded=uploaded, student=student, _scratch=scratch)
    if path.suffix.lower() == ".ipynb":
        return Submission(ident, path, path, uploaded=[path.name], student=student)
    if path.suffix.lower() != ".zip":
        return Submission(ident, path, None, problem=f"{path.name}: not a notebook, folder or zip",
                          uploaded=[path.name], student=student)
    scratch = tempfile.TemporaryDirectory(prefix="autograder-zip-")
    try:
        notes = [refused.text for refused in _extract(path, Path(scratch.name))]
    except _UNREADABLE as error:
        scratch.cleanup()
        return Submission(ident, path, None, problem=f"{path.name} cannot be unpacked: {error}",
                          uploaded=[path.name], student=student)
    _unpack_nested(Path(scratch.name), notes)
    return Submission(ident, path, Path(scratch.name), notes=notes, uploaded=[path.name], student=student,
                      _scratch=scratch)


@dataclass
class Candidate:
    """One submission found among the batch's inputs, not yet opened."""

    id: str
    path: Path  # what to grade: a notebook, a zip or a folder
    student: Student | None = None
    origin: str = ""  # where it came from, for messages: 'moodle.zip › Jane Doe_1234567'
    notes: list[str] = field(default_factory=list)  # about its files, found before it is opened
    owned: bool = False  # its files are the intake's own copy (an unpacked download), not the marker's

    @cached_property
    def digest(self) -> str:
        """The fingerprint of its files, computed once: a rerun compares it with the stored grade's."""
        return digest(self.path)


class Intake:
    """The submissions under the batch's paths; owns the scratch space a Moodle zip is
    unpacked into, until ``close``."""

    def __init__(self, paths: list[Path], expected: list[str]) -> None:
        check_inputs(paths)
        self.candidates: list[Candidate] = []
        self.notes: list[str] = []  # about the inputs as a whole (entries that are nobody's, ...)
        self.problems: list[str] = []  # inputs that hold nothing to grade: 'x.zip: not a zip file'
        self._scratch: list[tempfile.TemporaryDirectory[str]] = []
        found: list[Candidate] = []
        for path in paths:
            found.extend(self._expand(path, expected))
        seen: dict[str, int] = {}
        for candidate in found:
            seen[candidate.id] = seen.get(candidate.id, 0) + 1
            if seen[candidate.id] > 1:
                candidate.id = f"{candidate.id}-{seen[candidate.id]}"
            self.candidates.append(candidate)

    def _expand(self, path: Path, expected: list[str]) -> list[Candidate]:
        if path.is_file() and path.suffix.lower() == ".zip" and _is_moodle_zip(path):
            return self._moodle_zip(path)
        if path.is_dir() and is_download(path):
            scratch = tempfile.TemporaryDirectory(prefix="autograder-moodle-")
            self._scratch.append(scratch)
            return self._students(path, path, Path(scratch.name) / "students", move=False)
        problem = input_problem(path) if path.is_file() else ""
        if problem:
            self.problems.append(problem)
            return []
        return [Candidate(submission_id(found), found, origin=str(found)) for found in discover([path], expected)]

    def _moodle_zip(self, path: Path) -> list[Candidate]:
        """A download zip, unpacked into scratch space; what it refused goes to the students it concerns."""
        scratch = tempfile.TemporaryDirectory(prefix="autograder-moodle-")
        self._scratch.append(scratch)
        unpacked = Path(scratch.name) / "download"
        try:
            refused = _extract(path, unpacked)
        except _UNREADABLE as error:
            self.problems.append(f"{path}: the Moodle download cannot be unpacked: {error}")
            return []
        by_entry: dict[str, list[str]] = {}
        for entry in refused:
            by_entry.setdefault(entry.top, []).append(entry.text)
        return self._students(path, unpacked, Path(scratch.name) / "students", move=True, refused=by_entry)

    def _students(self, source: Path, folder: Path, target: Path, *, move: bool,
                  refused: dict[str, list[str]] | None = None) -> list[Candidate]:
        homes, notes = split_download(folder, target, move=move, refused=refused)
        self.notes += [f"{source.name}: {note}" for note in notes]
        if not homes:
            raise UsageError(f"{source}: holds no submissions named as Moodle names them")
        candidates = []
        for home in homes:
            candidate = Candidate(home.folder.name, home.folder, home.student, notes=home.notes, owned=True,
                                  origin=f"{source.name} › {home.student.name}_{home.student.participant}")
            candidate.digest  # noqa: B018 (of the files as handed in, before their zips are unpacked)
            _unpack_nested(home.folder, candidate.notes)  # once, in the intake's copy: no other copy is made
            candidates.append(candidate)
        return candidates

    def scratch(self) -> list[Path]:
        """Where the downloads were unpacked: every student's files, which no kernel may read."""
        return [Path(scratch.name) for scratch in self._scratch]

    def close(self) -> None:
        for scratch in self._scratch:
            scratch.cleanup()
        self._scratch.clear()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def input_problem(path: Path) -> str:
    """Why a file given as an input holds nothing to grade ('' when it may): not a zip,
    a zip without notebooks or zips in it, neither a notebook nor a zip."""
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        return ""  # even an empty one is a student's: graded with the reason
    if suffix != ".zip":
        return f"{path}: not a notebook, zip or folder"
    try:
        with zipfile.ZipFile(path) as archive:
            names = [_member_name(info) for info in archive.infolist() if not info.is_dir()]
    except _UNREADABLE as error:
        if isinstance(error, zipfile.BadZipFile):
            return f"{path}: not a zip file"
        return f"{path}: cannot be read: {error}"
    parts = [PurePosixPath(name.replace("\\", "/")) for name in names]
    if not any(p.suffix.lower() in (".ipynb", ".zip") and not _IGNORED_PARTS & set(p.parts) for p in parts):
        return f"{path}: holds no notebook or submission"
    return ""


def _is_moodle_zip(path: Path) -> bool:
    """Whether a zip's top-level names are Moodle's (a student's own zip is not)."""
    try:
        with zipfile.ZipFile(path) as archive:
            tops = {_member_name(info).replace("\\", "/").split("/")[0] for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False
    tops = {top for top in tops if top and not top.startswith((".", "__MACOSX"))}
    named = [top for top in tops if parse_entry(top) is not None]
    return bool(named) and len(named) * 2 >= len(tops)
