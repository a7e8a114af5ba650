r"""Moodle's offline grading worksheet: read the one the marker downloaded, write Grade
and Feedback comments back, and keep everything else exactly as it was.

Moodle writes the worksheet with PHP's ``fputcsv``: a field is quoted when it holds a
comma, a quote, a tab, a space, a line break or the escape character, and each record
ends with ``\n`` (a field may hold ``\r\n`` of its own, as a browser submits comments).
Moodle 4.x writes with no escape character (every quote doubled); older versions escape
with ``\`` (a quote right after a backslash is not doubled, and PHP's reader keeps both).
The worksheet is read as PHP reads it, every untouched record is written back as its
very bytes, and a filled record is written as PHP would write it, in the file's own
escape style and with its own line ending, so Moodle's importer reads it as intended.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from dateutil import parser as dateparser

from ..atomic import atomic_write
from ..errors import UsageError
from ..grading.moodle import same_moodle_name

IDENTIFIER, GRADE, FEEDBACK = "Identifier", "Grade", "Feedback comments"
MAXIMUM, SUBMITTED, GROUP, NAME = "Maximum Grade", "Last modified (submission)", "Group", "Full name"
DEFAULT_TEAM = "Default group"  # Moodle's folder for the submission of students in no group
_PARTICIPANT = re.compile(r"(\d+)\s*$")
_PHP_SPECIAL = (",", '"', "\n", "\r", "\t", " ")  # what makes fputcsv quote a field, besides its escape
_ESCAPES = {"php": None, "php-backslash": "\\"}  # Moodle 4.x, then older versions


def php_field(value: str, escape: str | None) -> str:
    """One field exactly as PHP's ``fputcsv(..., ',', '"', escape)`` writes it."""
    if not any(c in value for c in _PHP_SPECIAL) and not (escape and escape in value):
        return value
    out, escaped = ['"'], False
    for ch in value:
        if escape and ch == escape:
            escaped = True
        elif not escaped and ch == '"':
            out.append('"')
        else:
            escaped = False
        out.append(ch)
    return "".join([*out, '"'])


def php_record(fields: list[str], escape: str | None, newline: str = "\n") -> str:
    return ",".join(php_field(value, escape) for value in fields) + newline


def php_records(text: str, escape: str | None) -> list[tuple[list[str], str]] | None:
    """The records of ``text`` as PHP's ``fgetcsv`` reads them, each with its own text (its
    line ending included); None when a quoted field never closes."""
    records: list[tuple[list[str], str]] = []
    i, n = 0, len(text)
    while i < n:
        start, fields = i, []
        while True:
            if i < n and text[i] == '"':
                i, part = i + 1, []
                while True:
                    if i >= n:
                        return None
                    ch = text[i]
                    if escape and ch == escape and i + 1 < n:  # both kept; the next cannot close the field
                        part += [ch, text[i + 1]]
                        i += 2
                    elif ch == '"' and text.startswith('""', i):
                        part.append('"')
                        i += 2
                    elif ch == '"':
                        i += 1
                        break
                    else:
                        part.append(ch)
                        i += 1
                while i < n and text[i] not in ",\r\n":  # after the closing quote, up to the delimiter
                    part.append(text[i])
                    i += 1
                fields.append("".join(part))
            else:
                j = i
                while j < n and text[j] not in ",\r\n":
                    j += 1
                fields.append(text[i:j])
                i = j
            if i < n and text[i] == ",":
                i += 1
                continue
            i += 2 if text.startswith("\r\n", i) else 1 if i < n else 0
            break
        records.append((fields, text[start:i]))
    return records


def _python_record(fields: list[str], quoting: int, newline: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting, lineterminator=newline).writerow(fields)  # type: ignore[arg-type]
    return buffer.getvalue()


def _ending(raw: str) -> str:
    return "\r\n" if raw.endswith("\r\n") else "\n"


def _write_record(fields: list[str], style: str, newline: str) -> str:
    if style in _ESCAPES:
        return php_record(fields, _ESCAPES[style], newline)
    return _python_record(fields, csv.QUOTE_ALL if style == "all" else csv.QUOTE_MINIMAL, newline)


_NUMBER = re.compile(r"^\d[\d,. ]*$")


def _columns(header: list[str], rows: list[list[str]]) -> dict[str, int]:
    """Which column is which. By the English names where they are there; otherwise by the
    order Moodle writes its columns in every language, checked against their content: the
    identifier first (every value ends in the participant's number), the full name next,
    the grade right before the maximum grade (the same number on every row), whether the
    grade can be changed, the submission's time, and the feedback comments last."""
    english = {name: header.index(name) for name in (IDENTIFIER, NAME, GRADE, MAXIMUM, SUBMITTED, GROUP, FEEDBACK)
               if name in header}
    if {IDENTIFIER, GRADE, FEEDBACK} <= english.keys() or not rows or len(header) < 6:
        return english
    if not all(_PARTICIPANT.search(row[0]) for row in rows):
        return english
    for index in range(3, len(header) - 2):
        values = {row[index].strip() for row in rows}
        grades = [row[index - 1].strip() for row in rows]
        if (len(values) == 1 and _NUMBER.match(next(iter(values)))
                and all(not g or g == "-" or _NUMBER.match(g) for g in grades)):
            return {IDENTIFIER: 0, NAME: 1, GRADE: index - 1, MAXIMUM: index, SUBMITTED: index + 2,
                    FEEDBACK: len(header) - 1}
    return english


def _fit(records: list[tuple[list[str], str]], escape: str | None) -> tuple[bool, int, bool]:
    """How well reading a file with ``escape`` fits it: every record as wide as the header,
    then how many records PHP's writer reproduces in that style; Moodle 4.x's on a tie."""
    if not records:
        return (False, 0, escape is None)
    width = len(records[0][0])
    regular = all(len(fields) == width for fields, _ in records)
    same = sum(php_record(fields, escape, _ending(raw)) == raw for fields, raw in records)
    return (regular, same, escape is None)


def _style_of(records: list[tuple[list[str], str]], escape: str | None) -> str | None:
    """The writer that reproduces every record of a file read with ``escape``."""
    styles = [name for name, value in _ESCAPES.items() if value == escape] + (["all", "minimal"] if not escape else [])
    return next((style for style in styles
                 if all(_write_record(fields, style, _ending(raw)) == raw for fields, raw in records)), None)


@dataclass
class Worksheet:
    """A downloaded grading worksheet: its records as read, and each one's own text."""

    path: Path
    rows: list[list[str]]  # the header first
    bom: bool
    style: str  # how a filled record is written: php (no escape), php-backslash, all, minimal
    raws: list[str] = field(default_factory=list)  # each record's text as downloaded
    touched: set[int] = field(default_factory=set)  # records the grader filled
    columns: dict[str, int] = field(default_factory=dict)  # the English column name -> its index

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
        read = {escape: php_records(text, escape) for escape in (None, "\\")}
        escape = max((e for e in read if read[e] is not None), key=lambda e: _fit(read[e] or [], e), default=None)
        records = read[escape]
        if not records:
            raise UsageError(f"{path}: the grading worksheet is empty" if records is not None else
                             f"{path}: the grading worksheet is not CSV as Moodle writes it (a quote never closes)")
        rows = [fields for fields, _ in records]
        header = rows[0]
        short = [n + 1 for n, row in enumerate(rows) if len(row) != len(header)]
        if short:
            raise UsageError(f"{path}: line(s) {', '.join(map(str, short[:5]))} do not have {len(header)} columns")
        columns = _columns(header, rows[1:])
        missing = [c for c in (IDENTIFIER, GRADE, FEEDBACK) if c not in columns]
        if missing:
            raise UsageError(f"{path}: not a Moodle grading worksheet: no {', '.join(repr(c) for c in missing)} "
                             f"column (it has {', '.join(header[:6])}...), and its columns are not in the order "
                             "Moodle writes them in another language. In Moodle, enable the feedback comments and "
                             "offline grading worksheet feedback types, then download the worksheet again")
        style = _style_of(records, escape) or ("php" if escape is None else "php-backslash")
        return cls(path, rows, raw.startswith(b"\xef\xbb\xbf"), style, [raw_text for _, raw_text in records],
                   columns=columns)

    @property
    def header(self) -> list[str]:
        return self.rows[0]

    def _value(self, row: list[str], column: str) -> str:
        index = self.columns.get(column)
        return row[index] if row and index is not None else ""

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
        if GROUP not in self.columns:
            return teams
        for participant, row in self.participants().items():
            group = self._value(row, GROUP).strip()
            if group and group != "-":
                teams.setdefault(group, []).append(participant)
        return teams

    @property
    def teams(self) -> bool:
        """Whether this is a team assignment's worksheet: Moodle adds the Group column only then."""
        return GROUP in self.columns

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
            text = self._value(self.participants()[participant], MAXIMUM).replace(" ", "")
        except KeyError:
            return None
        if re.fullmatch(r"\d+,\d{1,2}", text):  # a decimal comma (de, fr, ...): 100,00
            text = text.replace(",", ".")
        try:
            return float(text.replace(",", ""))
        except ValueError:
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
        row[self.columns[GRADE]] = grade
        row[self.columns[FEEDBACK]] = feedback
        self.touched.add(next(n for n, candidate in enumerate(self.rows) if candidate is row))
        return True

    def text(self) -> str:
        """The worksheet as it will be written: untouched records as downloaded, filled ones
        as Moodle's own writer would write them, each with its own line ending."""
        parts = []
        for number, fields in enumerate(self.rows):
            raw = self.raws[number] if number < len(self.raws) else ""
            if number in self.touched or not raw:
                raw = _write_record(fields, self.style, _ending(raw) if raw else "\n")
            parts.append(raw)
        return "".join(parts)

    def write(self, path: Path) -> Path:
        return atomic_write(path, ("\ufeff" if self.bom else "") + self.text())


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
    return Worksheet(path, rows, bom=False, style="php").write(path)
