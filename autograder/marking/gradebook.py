"""The gradebook: one row per graded submission, with who submitted it, when, and the
late penalty the course's policy gives; built from the ``grade.json`` files of a
results folder, so it can be rebuilt at any time without grading again.

The policy is the rubric's as the gradebook is built: the late rule and the bonus cap
(bonus points are added to the raw points, capped at the maximum with ``bonus_cap:
total``, and the late rule applies to the capped points).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dateutil import parser as dateparser

from ..atomic import atomic_write
from ..errors import UsageError
from ..grading.intake import Student
from ..grading.moodle import same_moodle_name
from ..grading.record import Grade, Late

if TYPE_CHECKING:
    from ..course.rubric import Rubric
    from .worksheet import Worksheet


@dataclass
class Row:
    """One submission in the gradebook: its grade (with a marker's marks), who, and how late."""

    submission: str  # its results folder name
    grade: Grade
    student: Student | None = None
    late: Late = field(default_factory=Late)

    def __post_init__(self) -> None:
        if isinstance(self.grade, dict):  # a grade.json record as read
            self.grade = Grade.from_record(self.grade)

    @property
    def maximum(self) -> float:
        return self.grade.total_max

    @property
    def raw(self) -> float:
        """Points earned before any penalty: automatic points and marks a marker entered,
        bonus points included and capped per the policy."""
        return self.grade.raw

    @property
    def bonus(self) -> float:
        """Points earned on bonus items, before the cap."""
        return self.grade.bonus_points

    @property
    def final(self) -> float:
        return self.grade.final(self.late)

    @property
    def awaiting_marker(self) -> float:
        return self.grade.awaiting_marker


# -- the marker's files: extensions, submission times, marks for manual items


def _read_table(path: Path, what: str) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the {what}: {error}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]


def _key(row: dict[str, str], path: Path, line: int) -> str:
    for column in ("submission", "participant", "id", "student"):
        if row.get(column):
            return row[column].removeprefix("Participant ").strip()
    raise UsageError(f"{path}: line {line}: no participant or submission column with a value")


def _moment(text: str, path: Path, line: int, zone: tzinfo) -> datetime:
    try:
        moment = dateparser.parse(text, dayfirst=True)
    except (ValueError, OverflowError):
        raise UsageError(f"{path}: line {line}: {text!r} is not a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def read_extensions(path: Path, *, due: datetime | None, zone: tzinfo) -> dict[str, datetime]:
    """Per student, the due time after an extension: a ``due`` column (a date and time) or a
    ``days`` column (added to the rubric's due date)."""
    extended: dict[str, datetime] = {}
    for line, row in enumerate(_read_table(path, "extensions"), start=2):
        key = _key(row, path, line)
        if row.get("due"):
            extended[key] = _moment(row["due"], path, line, zone)
        elif row.get("days"):
            if due is None:
                raise UsageError(f"{path}: line {line}: an extension in days needs a due date in the rubric's policy")
            try:
                extended[key] = due + timedelta(days=float(row["days"]))
            except ValueError:
                raise UsageError(f"{path}: line {line}: days {row['days']!r} is not a number") from None
        else:
            raise UsageError(f"{path}: line {line}: give the extended due time (due) or the days granted (days)")
    return extended


def read_timestamps(path: Path, *, zone: tzinfo) -> dict[str, datetime]:
    """Per student, when the submission was handed in: a ``submitted`` column."""
    times: dict[str, datetime] = {}
    for line, row in enumerate(_read_table(path, "submission times"), start=2):
        if not row.get("submitted"):
            raise UsageError(f"{path}: line {line}: no 'submitted' time")
        times[_key(row, path, line)] = _moment(row["submitted"], path, line, zone)
    return times


def read_marks(path: Path, rubric: Rubric) -> dict[str, dict[str, float]]:
    """A marker's points for manual items, per student: one column per item id (the
    gradebook's own layout, so a marker can fill in a copy of gradebook.csv)."""
    manual = {item.id: item for question, item in rubric.items() if rubric.marked_by_hand(question, item)}
    marks: dict[str, dict[str, float]] = {}
    for line, row in enumerate(_read_table(path, "marks"), start=2):
        key = _key(row, path, line)
        for item_id, item in manual.items():
            text = row.get(item_id.lower(), "")
            if not text:
                continue
            try:
                points = float(text)
            except ValueError:
                raise UsageError(f"{path}: line {line}: item {item_id}: {text!r} is not a number") from None
            if not 0 <= points <= item.points:
                raise UsageError(f"{path}: line {line}: item {item_id}: {points:g} is outside 0..{item.points:g}")
            marks.setdefault(key, {})[item_id] = points
    return marks


# -- building the gradebook


def _student(grade: Grade, worksheet: Worksheet | None) -> Student | None:
    """Who a result belongs to. In a team assignment (the worksheet has a Group column) a
    folder's number is the group's id: the group is looked up by name first, and the
    number is taken as a participant's only when that participant has the folder's name.
    A team whose group is not found gets no members, never a stranger's grade."""
    student = grade.student
    if student is None or worksheet is None:
        return student
    if not worksheet.teams:
        return student
    members = worksheet.team_members(student.name)
    if members:
        return replace(student, team=True, members=tuple(members))
    if student.participant in worksheet.participants() and same_moodle_name(student.name,
                                                                            worksheet.name(student.participant)):
        return student
    return replace(student, team=True, members=())


def _lookup(table: dict[str, Any], row: Row) -> Any:
    keys = [row.submission]
    if row.student is not None:
        keys = [row.student.participant, *row.student.members, row.submission]
    return next((table[k] for k in keys if k in table), None)


def build_rows(grades: dict[str, Grade], rubric: Rubric, *, worksheet: Worksheet | None = None,
               timestamps: dict[str, datetime] | None = None, extensions: dict[str, datetime] | None = None,
               marks: dict[str, dict[str, float]] | None = None, zone: tzinfo = timezone.utc) -> list[Row]:
    """One row per result, with its student, its late penalty and a marker's manual marks."""
    rows = []
    for folder, grade in sorted(grades.items()):
        row = Row(folder, grade)
        row.student = _student(row.grade, worksheet)
        row.grade = replace(row.grade.with_marks(_lookup(marks or {}, row)), bonus_cap=rubric.policy.bonus_cap)
        submitted = _lookup(timestamps or {}, row)
        if submitted is None and worksheet is not None and row.student is not None:
            for participant in (row.student.participant, *row.student.members):
                submitted = submitted or worksheet.submitted(participant, zone)
        due = _lookup(extensions or {}, row) or rubric.policy.due
        row.late = row.grade.late(rubric.policy, submitted=submitted, due=due)
        rows.append(row)
    return rows


def write_csv(rows: list[Row], rubric: Rubric, path: Path) -> Path:
    """One row per submission, one column per rubric item, then raw, penalty and final. A
    rubric with bonus questions adds ``bonus`` before ``raw``: the points earned on bonus
    items, before the cap (``raw`` is capped)."""
    item_ids = [item.id for _, item in rubric.items()]
    bonus = any(question.bonus for question in rubric.questions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "participant", "name", "members", *item_ids, *(["bonus"] if bonus else []), "raw",
                     "maximum", "awaiting_marker", "submitted", "due", "days_late", "penalty", "final", "problem",
                     "late_note"])
    for row in rows:
        points = {i.id: "" if i.points is None else f"{i.points:g}" for i in row.grade.items}
        student = row.student
        writer.writerow([row.submission, student.participant if student else "", student.name if student else "",
                         " ".join(student.members) if student else "", *[points.get(i, "") for i in item_ids],
                         *([f"{row.bonus:g}"] if bonus else []),
                         f"{row.raw:g}", f"{row.maximum:g}", f"{row.awaiting_marker:g}", row.late.submitted,
                         row.late.due, row.late.days, f"{row.late.penalty:g}", f"{row.final:g}",
                         row.grade.problem, row.late.note])
    return atomic_write(path, buffer.getvalue())
