"""What a marker uploads and reads, made from a results folder at any time:

- ``gradebook.csv``: one row per submission, one column per item, raw, penalty, final;
- ``moodle-grading-worksheet.csv``: the worksheet the marker downloaded, with Grade and
  Feedback comments filled in, ready to upload;
- ``feedback/<submission>.html`` and ``feedback.zip`` (Moodle's feedback-file layout);
- ``cohort.html``: score histograms and the items most often not earned.

Nothing here grades: rerun it with another extensions file or a marker's marks and
only these files change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..course.assignment import Assignment
from ..errors import UsageError
from ..grading.report import load_errors, load_grades
from .feedback import cohort_page, feedback_zip, moodle_comment, write_pages
from .gradebook import (
    Row,
    build_rows,
    read_extensions,
    read_marks,
    read_timestamps,
    write_csv,
)
from .worksheet import Worksheet

GRADEBOOK, WORKSHEET, FEEDBACK_DIR, FEEDBACK_ZIP, COHORT = (
    "gradebook.csv", "moodle-grading-worksheet.csv", "feedback", "feedback.zip", "cohort.html")


@dataclass
class MarkerFiles:
    """The marker's inputs beside the submissions; all optional."""

    worksheet: Path | None = None  # Moodle's downloaded grading worksheet
    timestamps: Path | None = None  # submission times, when there is no worksheet
    extensions: Path | None = None
    marks: Path | None = None  # points for manual items
    timezone: str | None = None  # of the worksheet's times; default: the due date's

    def validate(self, assignment: Assignment) -> None:
        """Read every file now, so that a mistake in one is reported before hours of grading."""
        publish_inputs(assignment, self)


@dataclass
class Published:
    rows: list[Row]
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def zone_of(assignment: Assignment, name: str | None) -> tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--timezone {name!r}: not a time zone name such as Australia/Melbourne") from None
    due = assignment.rubric.policy.due
    return due.tzinfo if due is not None and due.tzinfo is not None else timezone.utc


def publish_inputs(assignment: Assignment, files: MarkerFiles) -> dict[str, Any]:
    """The marker's files, read and checked: the keyword arguments of ``build_rows``."""
    rubric = assignment.rubric
    zone = zone_of(assignment, files.timezone)
    return {
        "worksheet": Worksheet.read(files.worksheet) if files.worksheet else None,
        "timestamps": read_timestamps(files.timestamps, zone=zone) if files.timestamps else None,
        "extensions": read_extensions(files.extensions, due=rubric.policy.due, zone=zone) if files.extensions else None,
        "marks": read_marks(files.marks, rubric) if files.marks else None,
        "zone": zone,
    }


def publish(assignment: Assignment, out_dir: Path, files: MarkerFiles = MarkerFiles()) -> Published:
    """Write the gradebook, the filled worksheet, feedback and the cohort summary into ``out_dir``."""
    rubric = assignment.rubric
    inputs = publish_inputs(assignment, files)
    worksheet = inputs["worksheet"]
    rows = build_rows(load_grades(out_dir) if out_dir.is_dir() else {}, rubric, **inputs)
    result = Published(rows)
    result.files.append(write_csv(rows, rubric, out_dir / GRADEBOOK))
    if worksheet is not None:
        result.warnings += fill_worksheet(worksheet, rows)
        result.files.append(worksheet.write(out_dir / WORKSHEET))
    write_pages(rows, rubric, out_dir / FEEDBACK_DIR)
    result.files.append(out_dir / FEEDBACK_DIR)
    if any(row.student is not None for row in rows):
        result.files.append(feedback_zip(rows, rubric, out_dir / FEEDBACK_ZIP))
    result.files.append(cohort_page(rows, rubric, out_dir / COHORT, errors=load_errors(out_dir)))
    return result


def fill_worksheet(worksheet: Worksheet, rows: list[Row]) -> list[str]:
    """Grade and Feedback comments for every graded participant; the rest stays as downloaded."""
    warnings = []
    for row in rows:
        if row.student is None:
            warnings.append(f"{row.submission}: not from a Moodle download, so not in the worksheet")
            continue
        if row.student.team and not row.student.members:
            warnings.append(f"{row.submission}: team {row.student.name!r} matches no group of {worksheet.path.name}'s "
                            "Group column, so no member is graded there (nor in the feedback zip); its grade is in "
                            "gradebook.csv only")
            continue
        participants = list(row.student.members) if row.student.team else [row.student.participant]
        for participant in participants:
            maximum = worksheet.maximum(participant)
            grade = row.final if not maximum else row.final * maximum / row.maximum
            if maximum and round(grade, 2) > maximum:
                # Moodle's worksheet upload skips a grade above the assignment's maximum, silently:
                # an uncapped bonus (bonus_cap: none) would be lost there, not added.
                warnings.append(f"{row.submission}: {grade:.2f} with its bonus is above the worksheet's maximum "
                                f"{maximum:g} for participant {participant}, which Moodle's upload would skip; the "
                                f"worksheet holds {maximum:g}, gradebook.csv the full {row.final:g} of "
                                f"{row.maximum:g}")
                grade = maximum
            if not worksheet.fill(participant, f"{grade:.2f}", moodle_comment(row)):
                warnings.append(f"{row.submission}: participant {participant} is not in {worksheet.path.name}; "
                                "its grade is in gradebook.csv only")
    return warnings
