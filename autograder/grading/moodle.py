"""Moodle's "Download all submissions": which files belong to whom.

Moodle names every entry after the student (or the team) and their participant id:

- folder mode (Moodle >= 4.1): ``Jane Doe_1234567_assignsubmission_file/A1.ipynb``
- folder mode, older: ``Jane Doe_1234567_assignsubmission_file_/A1.ipynb``
- flat mode: ``Jane Doe_1234567_assignsubmission_file_A1.ipynb``
- team submissions carry the group's name and id: ``Team Rocket_17_assignsubmission_file/...``

Names may hold underscores of their own (Moodle turns a name's underscores into spaces,
but not every export does), so a name is split on the *last* ``_<digits>_assignsubmission_``.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_ENTRY = re.compile(r"^(?P<name>.*)_(?P<id>\d+)_assignsubmission_(?P<plugin>[A-Za-z0-9]+)(?:_(?P<rest>.*))?$", re.S)
_NO_ID = re.compile(r"^(?P<name>.+?)_assignsubmission_(?P<plugin>[A-Za-z0-9]+)(?:_(?P<rest>.*))?$", re.S)


@dataclass(frozen=True)
class Student:
    """Who a submission belongs to, as Moodle names them."""

    participant: str  # Moodle's participant id (the number in "Participant 1234567")
    name: str  # full name, or the group's name for a team submission
    team: bool = False
    members: tuple[str, ...] = ()  # participant ids of a team's members, when known


@dataclass(frozen=True)
class Entry:
    """A top-level name of a Moodle download, taken apart."""

    name: str
    participant: str  # empty for a team without a group ("Default group")
    plugin: str  # file, onlinetext, ...
    rest: str | None  # the file's own name in flat mode; "" or None in folder mode

    @property
    def key(self) -> str:
        return f"{self.name}_{self.participant}" if self.participant else self.name


_NOT_IN_FILENAMES = re.compile(r"[\x00-\x1f\x7f&<>\"`|':\\/]")


def moodle_filename(name: str) -> str:
    """A name (a group's, a student's) as Moodle writes it into a download's folder names:
    ``format_string`` (a bare ``&`` becomes ``&amp;``, tags are dropped), its underscores
    made spaces, then ``clean_filename``'s removals (``& < > " ` | ' : \\ /`` and control
    characters). "Team_A & B" is written "Team A amp; B"."""
    text = re.sub(r"&(?!#?[A-Za-z0-9]+;)", "&amp;", name)
    text = re.sub(r"<[^>]*>", "", text).replace("_", " ")
    return _NOT_IN_FILENAMES.sub("", text).strip()


def same_moodle_name(folder_name: str, name: str) -> bool:
    """Whether a download's folder name is ``name`` (a worksheet's), as Moodle cleans it."""
    return " ".join(moodle_filename(name).casefold().split()) == " ".join(folder_name.casefold().split())


def parse_entry(name: str) -> Entry | None:
    """Split a Moodle entry name; None when it is not one."""
    match = _ENTRY.match(name) or _NO_ID.match(name)
    if match is None:
        return None
    fields = match.groupdict()
    return Entry(fields["name"].strip(), fields.get("id") or "", fields["plugin"], fields["rest"])


def is_download(folder: Path) -> bool:
    """Whether a folder's entries are named as Moodle names them (most of them, at least)."""
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    named = [entry for entry in entries if parse_entry(entry.name) is not None]
    return bool(named) and len(named) * 2 >= len(entries)


@dataclass
class Home:
    """One student's (or team's) files of a download, gathered in a folder, and what the
    intake noted about them (entries refused while unpacking, ...)."""

    student: Student
    folder: Path
    notes: list[str] = field(default_factory=list)


def split_download(folder: Path, target: Path, *, move: bool,
                   refused: Mapping[str, list[str]] | None = None) -> tuple[list[Home], list[str]]:
    """Gather each student's files of a Moodle download under ``target/<name>_<id>/``.

    ``move`` moves the files (the download was unpacked into scratch space); otherwise
    they are copied and the marker's folder stays as it is. ``refused`` holds notes on
    entries not unpacked, by their top-level name: each goes to its student, who is kept
    even when nothing of theirs was unpacked. Returns the students' homes, and notes on
    entries that are nobody's.
    """
    homes: dict[str, Home] = {}
    notes: list[str] = []
    transfer = shutil.move if move else _copy
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or path.name == "__MACOSX":
            continue
        entry = parse_entry(path.name)
        if entry is None:
            notes.append(f"{path.name}: not named as Moodle names submissions (Name_<id>_assignsubmission_...); "
                         "ignored")
            continue
        home = _home(homes, entry, target)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                transfer(str(child), str(_free(home.folder / child.name)))
        elif entry.rest:  # flat mode: the file's own name follows the prefix
            transfer(str(path), str(_free(home.folder / entry.rest)))
        else:
            home.notes.append(f"{path.name}: a Moodle entry without a file name; ignored")
    for top, texts in (refused or {}).items():
        entry = parse_entry(top)
        if entry is None:
            notes += texts
        else:
            _home(homes, entry, target).notes.extend(texts)
    return sorted(homes.values(), key=lambda home: home.folder.name), notes


def _home(homes: dict[str, Home], entry: Entry, target: Path) -> Home:
    """The student's home for a download entry, made on first sight."""
    if entry.key not in homes:
        folder = target / _folder_name(entry.key)
        folder.mkdir(parents=True, exist_ok=True)
        homes[entry.key] = Home(Student(participant=entry.participant, name=entry.name), folder)
    return homes[entry.key]


def _folder_name(key: str) -> str:
    return re.sub(r"[^\w.-]+", "_", key).strip("._") or "submission"


def _free(path: Path) -> Path:
    """``path``, or ``name (2).ext`` when taken (two plugins may hold files of one name)."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
        number += 1
    return candidate


def _copy(source: str, destination: str) -> None:
    if Path(source).is_dir():
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copy2(source, destination, follow_symlinks=False)


# -- writing Moodle's files: the demo's sample batch and the tests build downloads with these

@dataclass(frozen=True)
class Upload:
    """One student's (or team's) files, as Moodle holds them."""

    name: str
    participant: str
    files: dict[str, bytes]  # relative name -> content


def entry_prefix(name: str, participant: str) -> str:
    """The prefix Moodle gives a student's entries: underscores in the name become spaces."""
    clean = name.replace("_", " ").replace("/", " ")
    return f"{clean}_{participant}" if participant else clean


def write_download(path: Path, uploads: list[Upload], *, mode: str = "folders") -> Path:
    """A "Download all submissions" zip: ``folders`` (Moodle >= 4.1), ``folders-old``
    (a trailing underscore) or ``flat`` (one level, the file name after the prefix)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for upload in uploads:
            prefix = f"{entry_prefix(upload.name, upload.participant)}_assignsubmission_file"
            for relative, content in upload.files.items():
                if mode == "flat":
                    archive.writestr(f"{prefix}_{relative}", content)
                elif mode == "folders-old":
                    archive.writestr(f"{prefix}_/{relative}", content)
                elif mode == "folders":
                    archive.writestr(f"{prefix}/{relative}", content)
                else:
                    raise ValueError(f"unknown download mode {mode!r}")
    return path
