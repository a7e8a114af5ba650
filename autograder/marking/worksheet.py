"""Moodle's offline grading worksheet: read the one the marker downloaded, write Grade
and Feedback comments back, and keep everything else exactly as it was.

Moodle writes the worksheet with PHP's ``fputcsv`` (a field is quoted when it holds a
comma, a quote, a backslash, white space or a line break). The written file uses the
quoting that reproduces the downloaded file, so rows the grader did not touch stay
byte for byte the same, and Moodle's importer reads it back.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

from dateutil import parser as dateparser

from ..atomic import atomic_write
from ..errors import UsageError
from ..grading.moodle import same_moodle_name

IDENTIFIER, GRADE, FEEDBACK = "Identifier", "Grade", "Feedback comments"
MAXIMUM, SUBMITTED, GROUP, NAME = "Maximum Grade", "Last modified (submission)", "Group", "Full name"
DEFAULT_TEAM = "Default group"  # Moodle's folder for the submission of students in no group
_PARTICIPANT = re.compile(r"(\d+)\s*$")
_PHP_QUOTED = re.compile(r'[,"\\\s]')


def _php_field(value: str) -> str:
    if value == "" or not _PHP_QUOTED.search(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def _php(rows: list[list[str]], newline: str) -> str:
    return "".join(",".join(_php_field(v) for v in row) + newline for row in rows)


def _python(quoting: Literal[0, 1, 2, 3]) -> Callable[[list[list[str]], str], str]:
    def write(rows: list[list[str]], newline: str) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, quoting=quoting, lineterminator=newline).writerows(rows)
        return buffer.getvalue()

    return write


_WRITERS = {"php": _php, "all": _python(csv.QUOTE_ALL), "minimal": _python(csv.QUOTE_MINIMAL)}


@dataclass
class Worksheet:
    """A downloaded grading worksheet, header and rows as text."""

    path: Path
    rows: list[list[str]]  # the header first
    bom: bool
    newline: str
    style: str  # the writer that reproduces the downloaded file

    @classmethod
    def read(cls, path: Path) -> Worksheet:
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise UsageError(f"{path}: cannot read the grading worksheet: {error.strerror}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: the grading worksheet is not UTF-8 text; download it again from Moodle "
                             "(Grading action › Download grading worksheet)") from None
        newline = "\r\n" if "\r\n" in text else "\n"
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            raise UsageError(f"{path}: the grading worksheet is empty")
        header = rows[0]
        missing = [c for c in (IDENTIFIER, GRADE, FEEDBACK) if c not in header]
        if missing:
            raise UsageError(f"{path}: not a Moodle grading worksheet: no {', '.join(repr(c) for c in missing)} "
                             f"column (it has {', '.join(header[:6])}...). In Moodle, enable the feedback comments "
                             "and offline grading worksheet feedback types, then download the worksheet again")
        short = [n + 1 for n, row in enumerate(rows) if len(row) != len(header)]
        if short:
            raise UsageError(f"{path}: line(s) {', '.join(map(str, short[:5]))} do not have {len(header)} columns")
        style = next((name for name, writer in _WRITERS.items() if writer(rows, newline) == text), "php")
        return cls(path, rows, raw.startswith(b"\xef\xbb\xbf"), newline, style)

    @property
    def header(self) -> list[str]:
        return self.rows[0]

    def _value(self, row: list[str], column: str) -> str:
        return row[self.header.index(column)] if row and column in self.header else ""

    def participants(self) -> dict[str, list[str]]:
        """Participant id -> its row."""
        found: dict[str, list[str]] = {}
        for row in self.rows[1:]:
            match = _PARTICIPANT.search(self._value(row, IDENTIFIER))
            if match:
                found[match.group(1)] = row
        return found

    def name(self, participant: str) -> str:
        return self._value(self.participants().get(participant, []), NAME) if participant else ""

    def groups(self) -> dict[str, list[str]]:
        """Team name -> its members' participant ids (team assignments have a Group column)."""
        teams: dict[str, list[str]] = {}
        if GROUP not in self.header:
            return teams
        for participant, row in self.participants().items():
            group = self._value(row, GROUP).strip()
            if group and group != "-":
                teams.setdefault(group, []).append(participant)
        return teams

    @property
    def teams(self) -> bool:
        """Whether this is a team assignment's worksheet: Moodle adds the Group column only then."""
        return GROUP in self.header

    def team_members(self, folder_name: str) -> list[str]:
        """The members of the group a download's team folder is named after (Moodle cleans
        the group's name for the folder, the Group column keeps it raw); "Default group"
        is everyone in no group. Empty when no group matches."""
        if not self.teams:
            return []
        if folder_name.casefold() == DEFAULT_TEAM.casefold():
            return [p for p, row in self.participants().items() if self._value(row, GROUP).strip() in ("", "-")]
        return next((members for group, members in self.groups().items() if same_moodle_name(folder_name, group)),
                    [])

    def maximum(self, participant: str) -> float | None:
        try:
            return float(self._value(self.participants()[participant], MAXIMUM).replace(",", ""))
        except (KeyError, ValueError):
            return None

    def submitted(self, participant: str, zone: tzinfo) -> datetime | None:
        """When the participant last modified their submission ("-" or absent: unknown).
        Moodle writes it in the downloading user's time zone without saying which: ``zone``."""
        text = self._value(self.participants().get(participant, []), SUBMITTED).strip()
        if not text or text == "-":
            return None
        try:
            moment = dateparser.parse(text, dayfirst=True)
        except (ValueError, OverflowError):
            raise UsageError(f"{self.path}: participant {participant}: cannot read the time {text!r} in "
                             f"{SUBMITTED!r}; give the submission times with --timestamps") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)

    def fill(self, participant: str, grade: str, feedback: str) -> bool:
        """Set a participant's Grade and Feedback comments; False when the worksheet lacks them."""
        row = self.participants().get(participant)
        if row is None:
            return False
        row[self.header.index(GRADE)] = grade
        row[self.header.index(FEEDBACK)] = feedback
        return True

    def write(self, path: Path) -> Path:
        text = _WRITERS[self.style](self.rows, self.newline)
        return atomic_write(path, ("\ufeff" if self.bom else "") + text)


# -- writing a worksheet as Moodle does: the demo's sample batch and the tests use it

WORKSHEET_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                    "Grade can be changed", "Last modified (submission)", "Online text", "Last modified (grade)",
                    "Feedback comments"]


def moodle_time(moment: datetime) -> str:
    """A time as Moodle's worksheet shows it: 'Monday, 16 October 2023, 09:45 AM'."""
    return moment.strftime("%A, %d %B %Y, %I:%M %p")


def write_worksheet(path: Path, students: list[tuple[str, str, datetime | None]], *, maximum: float = 100,
                    groups: dict[str, str] | None = None) -> Path:
    """A grading worksheet as Moodle writes it, for (participant, full name, submitted) rows;
    ``groups`` (participant -> group name) adds the Group column of team assignments."""
    header = list(WORKSHEET_HEADER)
    if groups is not None:
        header.insert(3, "Group")
    rows = [header]
    for participant, name, submitted in students:
        row = [f"Participant {participant}", name, f"{name.split()[0].lower()}@example.edu",
               "Submitted for grading" if submitted else "No submission", "", f"{maximum:.2f}", "Yes",
               moodle_time(submitted) if submitted else "-", "", "-", ""]
        if groups is not None:
            row.insert(3, groups.get(participant, "-"))
        rows.append(row)
    return Worksheet(path, rows, bom=False, newline="\n", style="php").write(path)
