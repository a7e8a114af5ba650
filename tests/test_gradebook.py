"""Late penalties, extensions, submission times and a marker's marks, from the marker's files."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.course.rubric import Policy
from autograder.errors import UsageError
from autograder.grading.intake import Student
from autograder.grading.moodle import moodle_filename
from autograder.grading.record import Grade, lateness
from autograder.marking.feedback import feedback_zip
from autograder.marking.gradebook import (
    Row,
    build_rows,
    read_extensions,
    read_marks,
    read_timestamps,
)
from autograder.marking.publish import fill_worksheet
from autograder.marking.worksheet import Worksheet, write_worksheet

DUE = datetime(2023, 10, 16, 9, 30, tzinfo=timezone(timedelta(hours=11)))
DEDUCT = Policy(due=DUE, late_penalty_per_day=0.1, not_assessed_after_days=7)
CAP = Policy(due=DUE, late_penalty_per_day=0.1, late_rule="cap", not_assessed_after_days=7)
FIT = Policy(due=DUE, late_penalty_per_day=0.2, not_assessed_after_days=7)


@pytest.mark.parametrize(
    ("policy", "late_by", "raw", "days", "penalty", "final_note"),
    [
        (DEDUCT, -timedelta(minutes=1), 95, 0, 0, ""),
        (DEDUCT, timedelta(0), 95, 0, 0, ""),
        (DEDUCT, timedelta(minutes=1), 95, 1, 10, "1 day late: 10% of the maximum (10 points) deducted"),
        (DEDUCT, timedelta(days=1, minutes=1), 95, 2, 20, "2 days late"),
        (DEDUCT, timedelta(days=3), 25, 3, 25, "3 days late"),  # never below zero
        (FIT, timedelta(hours=30), 80, 2, 40, "2 days late: 40% of the maximum (40 points) deducted"),
        # the ECE handouts' rule: one day late, 95 becomes 90 (a cap, not a deduction)
        (CAP, timedelta(hours=5), 95, 1, 5, "the grade is capped at 90% of the maximum (90)"),
        (CAP, timedelta(hours=5), 70, 1, 0, "1 day late"),
        (DEDUCT, timedelta(days=7), 95, 7, 70, "7 days late"),
        (DEDUCT, timedelta(days=7, seconds=1), 95, 8, 95, "8 days late: more than 7 days late is not assessed"),
    ],
)
def test_late_penalties_follow_the_policy(policy, late_by, raw, days, penalty, final_note):
    late = lateness(policy, submitted=DUE + late_by, due=DUE, maximum=100, raw=raw)
    assert (late.days, late.penalty) == (days, penalty)
    assert final_note in late.note
    assert late.not_assessed == (days > 7)


def test_unknown_times_and_no_due_date_cost_nothing():
    assert lateness(DEDUCT, submitted=None, due=DUE, maximum=100, raw=50).penalty == 0
    assert "submission time unknown" in lateness(DEDUCT, submitted=None, due=DUE, maximum=100, raw=50).note
    assert lateness(Policy(), submitted=DUE, due=None, maximum=100, raw=50).note == ""


def test_a_due_date_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="due needs a time zone"):
        Policy(due=datetime(2023, 10, 16, 9, 30))


def _record(submission: str, participant: str, points: dict[str, float | None],
            maxima: dict[str, float] | None = None) -> Grade:
    """A grade as read from grade.json; each item is worth 5 points unless ``maxima`` says."""
    items = [{"id": item_id, "points": value, "max_points": (maxima or {}).get(item_id, 5.0),
              "status": "passed" if value is not None else "manual", "reason": ""} for item_id, value in points.items()]
    return Grade.from_record({"submission": submission, "items": items,
                              "student": {"participant": participant, "name": submission, "team": False,
                                          "members": []}})


def test_extensions_and_times_from_the_markers_files(tmp_path: Path, trivial):
    rubric = trivial.rubric.model_copy(update={"policy": DEDUCT})
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("participant,days,due\n101,3,\n102,,2023-10-30 09:30\n", encoding="utf-8")
    times = tmp_path / "times.csv"
    times.write_text("Participant,Submitted\n101,2023-10-18T09:30:00+11:00\n102,2023-10-29 10:00\n"
                     "103,2023-10-17 09:00\n", encoding="utf-8")
    zone = DUE.tzinfo
    rows = build_rows(
        {name: _record(name, participant, {"1": 2.0, "2a": 2.0, "2b": None, "3": 5.0},
                       {item.id: item.points for _, item in rubric.items()})
         for name, participant in (("ann", "101"), ("bob", "102"), ("cat", "103"))},
        rubric,
        timestamps=read_timestamps(times, zone=zone),
        extensions=read_extensions(extensions, due=DUE, zone=zone),
        zone=zone,
    )
    by = {row.submission: row for row in rows}
    assert by["ann"].late.days == 0 and by["ann"].final == 9  # two days late, three days' extension
    assert by["bob"].late.days == 0  # extended to the 30th
    assert by["cat"].late.days == 1 and by["cat"].final == 8  # no extension: 10% of the maximum 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("participant,days\n101,two\n", "line 2: days 'two' is not a number"),
        ("participant,reason\n101,ill\n", "line 2: give the extended due time (due) or the days granted (days)"),
        ("name,days\n,3\n", "line 2: no participant or submission column with a value"),
        ("participant,due\n101,next tuesday-ish\n", "line 2: 'next tuesday-ish' is not a date and time"),
    ],
)
def test_a_bad_extensions_file_names_the_file_and_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "ext.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as error:
        read_extensions(path, due=DUE, zone=timezone.utc)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_markers_marks_fill_the_manual_items_only(tmp_path: Path, trivial):
    marks = tmp_path / "marks.csv"
    marks.write_text("submission,participant,1,2b\nann,101,0,1\nbob,102,,0.5\n", encoding="utf-8")
    read = read_marks(marks, trivial.rubric)
    assert read == {"ann": {"2b": 1.0}, "bob": {"2b": 0.5}}  # item 1 is automatic: its column is ignored
    rows = build_rows({"ann": _record("ann", "101", {"1": 2.0, "2b": None})}, trivial.rubric, marks=read)
    assert rows[0].raw == 3.0 and rows[0].awaiting_marker == 0
    marks.write_text("submission,2b\nann,4\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"line 2: item 2b: 4 is outside 0\.\.1"):
        read_marks(marks, trivial.rubric)


def test_a_row_without_penalty_keeps_its_raw_points():
    row = Row("ann", _record("ann", "101", {"1": 2.0, "2b": None}), Student("101", "Ann"))
    assert (row.raw, row.final, row.awaiting_marker, row.maximum) == (2.0, 2.0, 5.0, 10.0)


def test_a_team_is_graded_as_its_group_never_as_the_participant_with_its_number(tmp_path: Path, trivial):
    """Moodle names a team's folder after the group (its underscores made spaces, `&` cleaned
    away) and the group's id, which may be a stranger's participant id."""
    assert moodle_filename("Team_A & B") == "Team A amp; B"
    sheet = write_worksheet(tmp_path / "worksheet.csv", [
        ("17", "Sam Stranger", DUE), ("201", "Ann Member", DUE), ("202", "Ben Member", DUE),
        ("301", "Cat Solo", DUE), ("302", "Dan Solo", DUE),
    ], maximum=10, groups={"201": "Team_A & B", "202": "Team_A & B", "17": "Others"})
    worksheet = Worksheet.read(sheet)
    maxima = {item.id: item.points for _, item in trivial.rubric.items()}
    grades = {
        "team": _record("Team A amp; B", "17", {"1": 2.0, "2a": 2.0, "2b": None, "3": 5.0}, maxima),
        "lost": _record("Team Gone", "301", {"1": 2.0, "2a": 2.0, "2b": None, "3": 5.0}, maxima),
        "nogroup": _record("Default group", "", {"1": 2.0, "2a": 0.0, "2b": None, "3": 5.0}, maxima),
    }
    rows = {row.submission: row for row in build_rows(grades, trivial.rubric, worksheet=worksheet)}
    assert rows["team"].student.members == ("201", "202")
    assert rows["lost"].student.team and rows["lost"].student.members == ()  # never participant 301's grade
    assert rows["nogroup"].student.members == ("301", "302")  # the students in no group
    warnings = fill_worksheet(worksheet, list(rows.values()))
    assert any("team 'Team Gone' matches no group" in w for w in warnings)
    graded = {row[0]: row[worksheet.header.index("Grade")] for row in worksheet.rows[1:]}
    assert graded == {"Participant 17": "", "Participant 201": "9.00", "Participant 202": "9.00",
                      "Participant 301": "7.00", "Participant 302": "7.00"}
    with zipfile.ZipFile(feedback_zip(rows.values(), trivial.rubric, tmp_path / "feedback.zip")) as archive:
        participants = {name.split("_")[1] for name in archive.namelist()}
    assert participants == {"201", "202", "301", "302"}  # not 17
