"""The gradebook: one row per graded submission, with who submitted it, when, and the
late penalty the course's policy gives; built from the ``grade.json`` files of a
results folder, so it can be rebuilt at any time without grading again.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dateutil import parser as dateparser

from .atomic import atomic_write
from .errors import UsageError

if TYPE_CHECKING:
    from .rubric import Policy, Rubric
    from .worksheet import Worksheet


@dataclass(frozen=True)
class Student:
    """Who a submission belongs to, as Moodle names them."""

    participant: str  # Moodle's participant id (the number in "Participant 1234567")
    name: str  # full name, or the group's name for a team submission
    team: bool = False
    members: tuple[str, ...] = ()  # participant ids of a team's members, when known


@dataclass(frozen=True)
class Late:
    """How late a submission was and what that costs."""

    submitted: str = ""  # ISO time the submission was last modified; empty when unknown
    due: str = ""  # ISO due time after any extension; empty when the rubric has none
    days: int = 0  # whole days late, rounded up; 0 when on time or unknown
    penalty: float = 0.0  # points taken off
    not_assessed: bool = False  # later than the policy's cut-off: the grade is 0
    note: str = ""  # the sentence a student reads, e.g. "2 days late: 20% of the maximum deducted"


@dataclass
class Row:
    """One submission in the gradebook."""

    submission: str  # its results folder name
    record: dict[str, Any]  # its grade.json
    student: Student | None = None
    late: Late = field(default_factory=Late)

    @property
    def maximum(self) -> float:
        return float(self.record["totals"]["max"])

    @property
    def raw(self) -> float:
        """Points earned before any penalty: automatic points and marks a marker entered."""
        return round(sum(item["points"] or 0.0 for item in self.record["items"]), 6)

    @property
    def final(self) -> float:
        return 0.0 if self.late.not_assessed else round(max(0.0, self.raw - self.late.penalty), 6)

    @property
    def awaiting_marker(self) -> float:
        return round(sum(item["max_points"] for item in self.record["items"] if item["points"] is None), 6)


# -- late penalties


def lateness(policy: Policy, *, submitted: datetime | None, due: datetime | None, maximum: float,
             raw: float) -> Late:
    """What the course's policy makes of a submission handed in at ``submitted``.

    Days late are whole days, rounded up: one minute late is one day. ``deduct`` takes the
    policy's fraction of the maximum off per day; ``cap`` caps the grade at (1 - fraction x
    days) of the maximum. Beyond ``not_assessed_after_days`` the submission is not assessed.
    """
    if submitted is None or due is None:
        why = "" if due is None else "submission time unknown: no late penalty applied"
        return Late(submitted=submitted.isoformat() if submitted else "", due=due.isoformat() if due else "",
                    note=why)
    base = Late(submitted=submitted.isoformat(), due=due.isoformat())
    seconds = (submitted - due).total_seconds()
    if seconds <= 0:
        return base
    days = math.ceil(seconds / 86400)
    cutoff = policy.not_assessed_after_days
    if cutoff is not None and days > cutoff:
        return replace(base, days=days, penalty=raw, not_assessed=True,
                       note=f"{days} days late: more than {cutoff} days late is not assessed")
    fraction = min(1.0, policy.late_penalty_per_day * days)
    if policy.late_rule == "cap":
        ceiling = maximum * (1 - fraction)
        penalty = max(0.0, raw - ceiling)
        rule = f"the grade is capped at {1 - fraction:.0%} of the maximum ({ceiling:g})"
    else:
        penalty = min(raw, fraction * maximum)
        rule = f"{fraction:.0%} of the maximum ({fraction * maximum:g} points) deducted"
    plural = "day" if days == 1 else "days"
    return replace(base, days=days, penalty=round(penalty, 6), note=f"{days} {plural} late: {rule}")


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
    manual = {item.id: item for question, item in rubric.items()
              if item.kind == "manual" or question.status == "planned"}
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


def _student(record: dict[str, Any], worksheet: Worksheet | None) -> Student | None:
    data = record.get("student")
    if not data:
        return None
    student = Student(data["participant"], data["name"], bool(data.get("team")), tuple(data.get("members", ())))
    if worksheet is None:
        return student
    if student.participant in worksheet.participants():
        return student
    members = worksheet.groups().get(student.name)
    if members:  # a team's folder carries the group's id; its members are in the Group column
        return replace(student, team=True, members=tuple(members))
    return student


def _lookup(table: dict[str, Any], row: Row) -> Any:
    keys = [row.submission]
    if row.student is not None:
        keys = [row.student.participant, *row.student.members, row.submission]
    return next((table[k] for k in keys if k in table), None)


def _with_marks(record: dict[str, Any], marks: dict[str, float] | None) -> dict[str, Any]:
    if not marks:
        return record
    record = {**record, "items": [dict(item) for item in record["items"]]}
    for item in record["items"]:
        if item["id"] in marks and item["points"] is None:
            item["points"], item["status"], item["reason"] = marks[item["id"]], "marked", "marked by a marker"
    return record


def build_rows(records: dict[str, dict[str, Any]], rubric: Rubric, *, worksheet: Worksheet | None = None,
               timestamps: dict[str, datetime] | None = None, extensions: dict[str, datetime] | None = None,
               marks: dict[str, dict[str, float]] | None = None, zone: tzinfo = timezone.utc) -> list[Row]:
    """One row per result, with its student, its late penalty and a marker's manual marks."""
    rows = []
    for folder, record in sorted(records.items()):
        row = Row(folder, record, _student(record, worksheet))
        row.record = _with_marks(record, _lookup(marks or {}, row))
        submitted = _lookup(timestamps or {}, row)
        if submitted is None and worksheet is not None and row.student is not None:
            for participant in (row.student.participant, *row.student.members):
                submitted = submitted or worksheet.submitted(participant, zone)
        due = _lookup(extensions or {}, row) or rubric.policy.due
        row.late = lateness(rubric.policy, submitted=submitted, due=due, maximum=row.maximum, raw=row.raw)
        rows.append(row)
    return rows


def write_csv(rows: list[Row], rubric: Rubric, path: Path) -> Path:
    """One row per submission, one column per rubric item, then raw, penalty and final."""
    item_ids = [item.id for _, item in rubric.items()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "participant", "name", "members", *item_ids, "raw", "maximum",
                     "awaiting_marker", "submitted", "due", "days_late", "penalty", "final", "problem", "late_note"])
    for row in rows:
        points = {i["id"]: "" if i["points"] is None else f"{i['points']:g}" for i in row.record["items"]}
        student = row.student
        writer.writerow([row.submission, student.participant if student else "", student.name if student else "",
                         " ".join(student.members) if student else "", *[points.get(i, "") for i in item_ids],
                         f"{row.raw:g}", f"{row.maximum:g}", f"{row.awaiting_marker:g}", row.late.submitted,
                         row.late.due, row.late.days, f"{row.late.penalty:g}", f"{row.final:g}",
                         row.record.get("problem", ""), row.late.note])
    return atomic_write(path, buffer.getvalue())
