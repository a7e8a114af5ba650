"""Bonus questions: outside total_points, their points added to those earned and capped per
the policy (``bonus_cap``) before the late rule, and shown as bonus by every reader.

The rubric below is a tiny one built in code: question 1 is the assignment's 100 points
(1a 90 and 1b 8 automatic, 1c 2 manual), question 3.10 a 5-point bonus (3.10a 3 automatic,
3.10b 2 manual). Grades are scored by ``score`` from check outcomes made up here, so no
kernel runs, except in the last test, which grades the toy assignment end to end.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from rich.console import Console

from autograder.authoring.verify import Verification
from autograder.course.assignment import Assignment, load_assignment
from autograder.course.rubric import Rubric, parse_rubric
from autograder.errors import RubricError
from autograder.grading.intake import Student, open_submission
from autograder.grading.outcomes import CheckSession
from autograder.grading.outcomes import TestOutcome as Outcome
from autograder.grading.pipeline import GradeOptions, grade_submission
from autograder.grading.record import Grade, Late, Status
from autograder.grading.report import render_check, render_text
from autograder.grading.score import score
from autograder.marking.feedback import cohort_page, moodle_comment, student_page
from autograder.marking.gradebook import Row, build_rows, write_csv
from autograder.marking.gradescope import BONUS_NOTE, provisional
from autograder.marking.gradescope import results as gradescope_results
from autograder.marking.publish import fill_worksheet
from autograder.marking.worksheet import Worksheet, write_worksheet
from autograder.sandboxes.sandbox import LocalSandbox

from .conftest import TRIVIAL, TRIVIAL_CELLS, write_notebook

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope-results.schema.json").read_text())
DUE = datetime(2023, 9, 1, 23, 55, tzinfo=timezone(timedelta(hours=10)))
AUTOMATIC = ("1a", "1b", "3.10a")


def raw_rubric(*, bonus_cap: str | None = None, **policy: Any) -> dict[str, Any]:
    if bonus_cap is not None:
        policy["bonus_cap"] = bonus_cap
    return {
        "assignment": "bonus-demo",
        "title": "Bonus demo",
        "total_points": 100,
        "policy": {"due": DUE.isoformat(), **policy},
        "notebooks": [{"file": "a.ipynb", "questions": ["1", "3.10"]}],
        "questions": [
            {"id": "1", "title": "the assignment", "points": 100, "items": [
                {"id": "1a", "title": "most of it", "points": 90},
                {"id": "1b", "title": "a function", "points": 8},
                {"id": "1c", "title": "a discussion", "points": 2, "kind": "manual"},
            ]},
            {"id": "3.10", "title": "SAM", "points": 5, "bonus": True, "items": [
                {"id": "3.10a", "title": "SAM's step", "points": 3},
                {"id": "3.10b", "title": "SAM discussed", "points": 2, "kind": "manual"},
            ]},
        ],
    }  # fmt: skip


def assignment(tmp_path: Path, **policy: Any) -> Assignment:
    folder = tmp_path / "bonus-demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rubric.yaml").write_text(yaml.safe_dump(raw_rubric(**policy)), encoding="utf-8")
    return Assignment(folder / "rubric.yaml")


def graded(target: Assignment, *, failed: tuple[str, ...] = (), marks: dict[str, float] | None = None) -> Grade:
    """The grade ``score`` gives when every automatic item's check passes but ``failed``'s."""
    outcomes = [Outcome(f"check.py::test_{item}", item, Status.FAILED if item in failed else Status.PASSED,
                            "wrong" if item in failed else "") for item in AUTOMATIC]
    session = CheckSession(assignment=target, submission="ann", outcomes=outcomes, selected_items=set(AUTOMATIC))
    return score(session).with_marks(marks)


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(RubricError) as caught:
        parse_rubric(raw, "rubric.yaml")
    return caught.value.problems


# -- the rubric


def test_a_bonus_question_is_outside_total_points():
    rubric = parse_rubric(raw_rubric(), "rubric.yaml")
    assert [q.bonus for q in rubric.questions] == [False, True]
    assert rubric.total_points == 100 and rubric.bonus_points == 5
    assert rubric.policy.bonus_cap == "total"  # the default
    assert parse_rubric(raw_rubric(bonus_cap="none"), "rubric.yaml").policy.bonus_cap == "none"


def test_questions_other_than_bonus_must_add_up_to_total_points():
    counted = raw_rubric()
    counted["total_points"] = 105  # the bonus counted in the total
    (problem,) = problems_of(counted)
    assert problem == "top level: questions add up to 100 (bonus questions left out) but total_points is 105"
    short = raw_rubric()
    short["questions"][0]["points"] = 98
    short["questions"][0]["items"][0]["points"] = 88
    (problem,) = problems_of(short)
    assert problem == "top level: questions add up to 98 (bonus questions left out) but total_points is 100"
    not_bonus = raw_rubric()
    not_bonus["questions"][1]["bonus"] = False
    (problem,) = problems_of(not_bonus)
    assert problem == "top level: questions add up to 105 but total_points is 100"


def test_an_unknown_bonus_cap_is_refused_naming_the_field():
    (problem,) = problems_of(raw_rubric(bonus_cap="some"))
    assert problem.startswith("field 'policy' › field 'bonus_cap': Input should be 'total' or 'none'")


# -- scoring


def test_bonus_under_the_cap_is_added_to_the_points(tmp_path: Path):
    grade = graded(assignment(tmp_path), failed=("1b",))
    bonus = {item.id: item.bonus for item in grade.items}
    assert bonus == {"1a": False, "1b": False, "1c": False, "3.10a": True, "3.10b": True}
    statuses = {item.id: item.status for item in grade.items}
    assert statuses["3.10b"] is Status.MANUAL and statuses["3.10a"] is Status.PASSED  # marked like any manual item
    assert [item.id for item in grade.awaiting] == ["1c", "3.10b"]
    assert (grade.auto_points, grade.auto_max, grade.awaiting_marker, grade.total_max) == (90, 98, 2, 100)
    assert (grade.bonus_points, grade.bonus_max, grade.bonus_awaiting) == (3, 5, 2)
    assert grade.raw == 93  # 90 + 3 bonus
    assert grade.totals() == {"auto_points": 90, "auto_max": 98, "awaiting_marker": 2, "max": 100,
                              "bonus_points": 3, "bonus_max": 5}


def test_98_and_5_bonus_is_100_capped_and_103_uncapped(tmp_path: Path):
    marks = {"1c": 0.0, "3.10b": 2.0}
    capped = graded(assignment(tmp_path / "total"), marks=marks)
    assert capped.bonus_cap == "total"
    assert (capped.earned, capped.bonus_points, capped.raw, capped.total_max) == (103, 5, 100, 100)
    assert capped.final(Late()) == 100
    uncapped = graded(assignment(tmp_path / "none", bonus_cap="none"), marks=marks)
    assert (uncapped.earned, uncapped.raw, uncapped.total_max) == (103, 103, 100)
    assert uncapped.final(Late()) == 103


def test_the_cap_never_takes_off_points_earned_on_counted_items(tmp_path: Path):
    grade = graded(assignment(tmp_path), failed=("3.10a",), marks={"1c": 2.0, "3.10b": 0.0})
    assert (grade.earned, grade.raw) == (100, 100)
    assert grade.capped(90) == 100  # a lower maximum caps the bonus only


@pytest.mark.parametrize(("late_rule", "cap", "penalty", "final"), [
    ("deduct", "total", 10, 90),  # 100 capped, then 10% of 100 off: not 103 - 10 = 93
    ("deduct", "none", 10, 93),
    ("cap", "total", 10, 90),  # capped at 90% of the maximum
    ("cap", "none", 13, 90),
])  # fmt: skip
def test_the_late_penalty_applies_after_the_cap(tmp_path: Path, late_rule: str, cap: str, penalty: float,
                                                final: float):
    target = assignment(tmp_path, bonus_cap=cap, late_penalty_per_day=0.1, late_rule=late_rule)
    grade = graded(target, marks={"1c": 0.0, "3.10b": 2.0})
    late = grade.late(target.rubric.policy, submitted=DUE + timedelta(hours=5), due=DUE)
    assert late.days == 1 and late.penalty == penalty
    assert grade.final(late) == final


def test_a_record_keeps_the_bonus_and_the_cap(tmp_path: Path):
    grade = graded(assignment(tmp_path, bonus_cap="none"), marks={"3.10b": 1.0})
    record = json.loads(json.dumps(grade.to_record()))
    assert record["bonus_cap"] == "none" and [i["bonus"] for i in record["items"]] == [False] * 3 + [True] * 2
    assert record["totals"]["bonus_points"] == 4 and record["totals"]["bonus_max"] == 5
    again = Grade.from_record(record)
    assert again.to_record() == record and again.raw == grade.raw == 102
    old = Grade.from_record({"items": [{"id": "1", "max_points": 2, "points": 2, "status": "passed"}]})
    assert old.bonus_cap == "total" and not old.items[0].bonus and "bonus_points" not in old.totals()


# -- the readers: gradebook, worksheet, Gradescope, feedback, terminal, verify


def _rows(target: Assignment, grade: Grade, *, late_by: timedelta | None = None) -> list[Row]:
    grade = replace(grade, student=Student("101", "Ann Bonus"))
    times = {"101": DUE + late_by} if late_by is not None else None
    return build_rows({"ann": grade}, target.rubric, timestamps=times)


def test_the_gradebook_has_the_bonus_points_and_the_capped_raw(tmp_path: Path):
    target = assignment(tmp_path, late_penalty_per_day=0.1)
    grade = graded(target, marks={"1c": 0.0, "3.10b": 2.0})
    rows = _rows(target, grade, late_by=timedelta(hours=1))
    path = write_csv(rows, target.rubric, tmp_path / "gradebook.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        header, (row,) = next(csv.reader(handle)), list(csv.DictReader(path.open(encoding="utf-8")))
    assert header[4:13] == ["1a", "1b", "1c", "3.10a", "3.10b", "bonus", "raw", "maximum", "awaiting_marker"]
    assert {key: row[key] for key in ("3.10a", "3.10b", "bonus", "raw", "maximum", "penalty", "final")} == {
        "3.10a": "3", "3.10b": "2", "bonus": "5", "raw": "100", "maximum": "100", "penalty": "10", "final": "90"}


def test_the_gradebook_reads_the_cap_from_the_rubric_as_it_is_built(tmp_path: Path):
    grade = graded(assignment(tmp_path / "graded"), marks={"1c": 0.0, "3.10b": 2.0})  # graded under "total"
    (row,) = _rows(assignment(tmp_path / "now", bonus_cap="none"), grade)
    assert (row.raw, row.final, row.bonus) == (103, 103, 5)


def test_a_gradebook_without_bonus_questions_has_no_bonus_column(tmp_path: Path, trivial):
    path = write_csv([], trivial.rubric, tmp_path / "gradebook.csv")
    assert "bonus" not in path.read_text(encoding="utf-8").splitlines()[0].split(",")


@pytest.mark.parametrize(("cap", "late_by", "moodle"), [
    ("total", None, "10.00"),  # 103 capped at 100, scaled to Moodle's 10
    ("total", timedelta(hours=1), "9.00"),
    ("none", timedelta(hours=1), "9.30"),  # uncapped by the course's choice: 103 less 10 (10% of the maximum)
])  # fmt: skip
def test_the_worksheet_grade_scaled_to_moodle_stays_within_its_maximum_when_capped(
        tmp_path: Path, cap: str, late_by: timedelta | None, moodle: str):
    target = assignment(tmp_path, bonus_cap=cap, late_penalty_per_day=0.1)
    sheet = Worksheet.read(write_worksheet(tmp_path / "worksheet.csv", [("101", "Ann Bonus", DUE)], maximum=10))
    rows = _rows(target, graded(target, marks={"1c": 0.0, "3.10b": 2.0}), late_by=late_by)
    assert fill_worksheet(sheet, rows) == []
    assert sheet.rows[1][sheet.header.index("Grade")] == moodle


def test_an_uncapped_grade_above_moodles_maximum_is_written_as_the_maximum_and_said(tmp_path: Path):
    """Moodle's worksheet upload skips a grade above the assignment's maximum without a word,
    so 10.30 of 10 would leave the student ungraded there: the worksheet gets 10, the marker a
    warning naming the student, gradebook.csv the full 103."""
    target = assignment(tmp_path, bonus_cap="none")
    sheet = Worksheet.read(write_worksheet(tmp_path / "worksheet.csv", [("101", "Ann Bonus", DUE)], maximum=10))
    rows = _rows(target, graded(target, marks={"1c": 0.0, "3.10b": 2.0}))
    (warning,) = fill_worksheet(sheet, rows)
    assert sheet.rows[1][sheet.header.index("Grade")] == "10.00"
    assert "10.30 with its bonus is above the worksheet's maximum 10 for participant 101" in warning
    assert "gradebook.csv the full 103 of 100" in warning and rows[0].final == 103


def test_gradescope_names_bonus_tests_and_scores_the_capped_total(tmp_path: Path):
    target = assignment(tmp_path, late_penalty_per_day=0.1)
    rubric = target.rubric
    full = gradescope_results(graded(target), rubric, late=Late(), seconds=1.0)
    jsonschema.validate(full, SCHEMA)
    tests = {test["number"]: test for test in full["tests"]}
    assert set(tests) == set(AUTOMATIC)
    bonus = tests["3.10a"]
    assert bonus["name"] == "3.10a SAM's step (bonus)" and bonus["max_score"] == 3 and bonus["score"] == 3
    assert bonus["tags"] == ["question 3.10", "bonus"] and bonus["output"].startswith(BONUS_NOTE)
    assert tests["1a"]["name"] == "1a most of it" and tests["1a"]["tags"] == ["question 1"]
    assert full["score"] == 98  # only automatic items are scored: 98 + 3 capped at their maximum, 98
    assert full["output"].startswith("Public items: 98 / 98.\n\nPublic bonus items: 3 / 3. Bonus points are added "
                                     "to the score; the score with them never exceeds the maximum.")
    assert "Marked by hand: 1c (2), 3.10b (2 bonus)." in full["output"]
    under = gradescope_results(graded(target, failed=("1b",)), rubric, late=Late(), seconds=1.0)
    assert under["score"] == 93  # 90 + 3
    grade = graded(target)
    late = grade.late(rubric.policy, submitted=DUE + timedelta(hours=1), due=DUE, automatic_only=True)
    assert late.penalty == 9.8  # 10% of 98, on the capped 98
    assert gradescope_results(grade, rubric, late=late, seconds=1.0)["score"] == 88.2
    uncapped = assignment(tmp_path / "none", bonus_cap="none")
    assert gradescope_results(graded(uncapped), uncapped.rubric, late=Late(), seconds=1.0)["score"] == 101
    waiting = {test["number"]: test["name"] for test in provisional(rubric)["tests"]}
    assert waiting == {"1a": "1a most of it", "1b": "1b a function", "3.10a": "3.10a SAM's step (bonus)"}


def test_feedback_shows_bonus_under_its_label_with_how_it_counts(tmp_path: Path):
    target = assignment(tmp_path)
    (row,) = _rows(target, graded(target, failed=("1b",)))
    page = student_page(row, target.rubric)
    rule = ("Bonus points are added to your points, but the grade with them never exceeds the maximum (100); "
            "any late penalty applies after that cap.")
    assert "<h2>Bonus: question 3.10: SAM" in page and "<h2>Question 1: the assignment" in page
    assert f'<p class="muted">{rule}</p>' in page
    assert f"<tr><th>Bonus</th><td>3 / 5 (2 points awaiting a marker). {rule}</td></tr>" in page
    assert "<td>93 / 100</td>" in page  # raw: 90 + 3 bonus
    assert "<th>Awaiting a marker</th><td>2 points, not yet in the grade</td>" in page  # 1c; 3.10b is bonus
    comment = moodle_comment(row)
    assert comment.startswith("<p>Grade: 93 / 100. submission time unknown: no late penalty applied. 2 points "
                              f"awaiting a marker. Bonus: 3 / 5, 2 awaiting a marker. {rule}</p>")
    assert "<br>1b (0/8): wrong" in comment


def test_feedback_of_an_uncapped_bonus_and_the_cohort_above_the_maximum(tmp_path: Path):
    target = assignment(tmp_path, bonus_cap="none")
    (row,) = _rows(target, graded(target, failed=("3.10a",), marks={"1c": 2.0, "3.10b": 1.0}))
    assert (row.raw, row.final) == (101, 101)
    page = student_page(row, target.rubric)
    assert "may take the grade above the maximum (100)" in page and "<strong>101 / 100</strong>" in page
    assert "<br>bonus 3.10a (0/3): wrong" in moodle_comment(row)
    cohort = cohort_page([row], target.rubric, tmp_path / "cohort.html").read_text(encoding="utf-8")
    assert "histogram: Bonus question 3.10: SAM" in cohort


def test_the_terminal_shows_the_bonus_apart(tmp_path: Path):
    grade = graded(assignment(tmp_path))
    header = render_text(grade).splitlines()[0]
    assert header.endswith("automatic 98 / 98   awaiting a marker 2   maximum 100   bonus 3 / 5")
    console = Console(record=True, width=200, color_system=None)
    render_check(grade, console=console, cell_timeout=30)
    text = console.export_text()
    assert "by hand (2 points and 2 bonus): 1c, 3.10b" in text
    assert "public automatic items: 98 / 98, bonus 3 / 3" in text


def test_verify_requires_the_reference_to_earn_the_bonus_items_too(tmp_path: Path):
    target = assignment(tmp_path)
    assert Verification(graded(target), 1.0).complete
    assert Verification(graded(target), 1.0).bonus == (3, 3)
    missed = Verification(graded(target, failed=("3.10a",)), 1.0)
    assert missed.grade.auto_points == missed.grade.auto_max == 98  # the counted items are all earned
    assert not missed.complete and missed.bonus == (0, 3)


# -- end to end: the toy assignment with its question 3 made a bonus


def test_the_toy_assignment_graded_with_a_bonus_question(tmp_path: Path):
    folder = tmp_path / "assignment"
    (folder / "checks").mkdir(parents=True)
    for source in (TRIVIAL / "checks").glob("*.py"):
        (folder / "checks" / source.name).write_bytes(source.read_bytes())
    text = (TRIVIAL / "rubric.yaml").read_text(encoding="utf-8")
    text, one = re.subn(r"(?m)^total_points: 10$", "total_points: 5", text)
    text, two = re.subn(r'(  - id: "3"\n    title: A classifier\n)', r"\1    bonus: true\n", text)
    assert (one, two) == (1, 1)
    (folder / "rubric.yaml").write_text(text, encoding="utf-8")
    target = load_assignment(folder)
    rubric: Rubric = target.rubric
    assert [q.id for q in rubric.questions if q.bonus] == ["3"]
    write_notebook(tmp_path / "jane" / "trivial.ipynb", *TRIVIAL_CELLS)
    opened = open_submission(tmp_path / "jane")
    try:
        grade = grade_submission(target, opened, options=GradeOptions(), sandbox=LocalSandbox(),
                                 out=tmp_path / "results" / "jane")
    finally:
        opened.close()
    record = json.loads((tmp_path / "results" / "jane" / "grade.json").read_text(encoding="utf-8"))
    assert {i["id"]: (i["points"], i["bonus"]) for i in record["items"]} == {
        "1": (2.0, False), "2a": (2.0, False), "2b": (None, False), "3": (5.0, True)}
    assert record["totals"] == {"auto_points": 4.0, "auto_max": 4.0, "awaiting_marker": 1.0, "max": 5.0,
                                "bonus_points": 5.0, "bonus_max": 5.0}
    assert record["bonus_cap"] == "total"
    assert (grade.earned, grade.raw) == (9.0, 5.0)  # 4 earned + 5 bonus, capped at the maximum of 5
    assert Verification(grade, 1.0).complete
