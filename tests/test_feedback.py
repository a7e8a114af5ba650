"""Feedback pages, Moodle comments and zips, and the cohort summary, from records built in code."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from autograder.course.assignment import load_assignment
from autograder.course.rubric import Rubric
from autograder.grading.intake import Student
from autograder.grading.record import Late
from autograder.marking.feedback import (
    cohort_page,
    feedback_zip,
    moodle_comment,
    student_page,
    write_pages,
)
from autograder.marking.gradebook import Row

TRIVIAL = Path(__file__).resolve().parent / "assignments" / "trivial"
BOOM = [
    '  File "/tmp/ipykernel_2361/3125889256.py", line 2, in classify',
    '    raise ValueError("boom")',
    "ValueError: boom",
]
LATE = Late(days=2, penalty=1.0, note="2 days late: 10% of the maximum deducted")


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_assignment(TRIVIAL).rubric


def item(item_id: str, points: float | None, status: str, reason: str = "", **extra: Any) -> dict[str, Any]:
    """One item of a grade.json record for the trivial rubric."""
    meta = {
        "1": ("1", "answer holds the expected value", "auto", "hidden", 2.0),
        "2a": ("2", "double(x) doubles an array", "auto", "public", 2.0),
        "2b": ("2", "why doubling", "manual", "public", 1.0),
        "3": ("3", "sign classifier accuracy on held-out points", "auto", "public", 5.0),
    }
    question, title, kind, visibility, max_points = meta[item_id]
    return {
        "id": item_id, "question": question, "title": title, "kind": kind, "visibility": visibility,
        "max_points": max_points, "points": points, "status": status, "reason": reason,
        "detail": [], "measurements": [], "checks": [], **extra,
    }  # fmt: skip


def record(submission: str = "bob", *, items: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A grade.json record as report.grade_record writes it: by default 2 of 10 points, 1 awaiting a marker."""
    items = items or [
        item("1", 2.0, "passed"),
        item("2a", 0.0, "failed", "double(x): 12 of 13 values differ (±1e-09); first at (0,): expected -6, got -3"),
        item("2b", None, "manual", "awaiting a marker"),
        item(
            "3", 0.0, "failed", "`classify` raised ValueError: boom", detail=BOOM,
            measurements=[{"name": "accuracy", "value": 0.55, "reference": None, "note": ""}],
        ),
    ]  # fmt: skip
    auto = [i for i in items if i["points"] is not None]
    base = {
        "assignment": "trivial", "submission": submission, "items": items,
        "notebooks": [{
            "notebook": "trivial.ipynb", "seconds": 0.618, "code_cells": 5, "problem": "",
            "truncated_output_cells": [],
            "cells_not_ok": [{
                "cell": 3, "status": "error", "seconds": 0.1, "error": "NameError: name 'x' is not defined",
                "note": "", "traceback_tail": ["Cell In[3], line 1", "NameError: name 'x' is not defined"],
            }],
        }],
        "findings": [{"level": "warning", "file": "trivial.ipynb", "message": "4 of 4 code cells have no output"}],
        "public_only": False, "problem": "", "source": "/path/to/submission",
        "graded_at": "2026-11-24T08:55:40+00:00",
        "totals": {
            "auto_points": sum(i["points"] for i in auto), "auto_max": sum(i["max_points"] for i in auto),
            "awaiting_marker": sum(i["max_points"] for i in items if i["points"] is None), "max": 10.0,
        },
    }  # fmt: skip
    return {**base, **extra}


def bob(**extra: Any) -> Row:
    return Row("bob", record(**extra), Student("1234567", "Bob Smith"), LATE)


def test_student_page_shows_points_reasons_metric_traceback_and_totals(rubric: Rubric) -> None:
    page = student_page(bob(), rubric)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Bob Smith" in page and "Three trivial questions" in page
    assert "<td>2 / 2</td>" in page and "<td>0 / 2</td>" in page and "<td>0 / 5</td>" in page
    assert "awaiting a marker (of 1)" in page
    assert "12 of 13 values differ (±1e-09)" in page and "`classify` raised ValueError: boom" in page
    assert "accuracy 0.55 — needs ≥ 0.9 for full marks, ≥ 0.6 for 50%" in page
    assert "raise ValueError(&#34;boom&#34;)" in page and "<pre>  File &#34;/tmp/ipykernel_2361" in page
    assert "2 days late: 10% of the maximum deducted" in page and "1 point deducted" in page
    assert "<td>2 / 10</td>" in page and "<strong>1 / 10</strong>" in page  # raw, then final after the penalty
    assert "Code cell 3 (In [3]): error" in page and "NameError: name &#39;x&#39; is not defined" in page
    assert "4 of 4 code cells have no output" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_student_text_is_escaped_everywhere(rubric: Rubric, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    rec = record(findings=[{"level": "error", "file": f"{evil}.ipynb", "message": "bad name"}])
    rec["items"][1]["reason"] = evil
    row = Row("eve", rec, Student("42", f"Eve {evil}"))
    page = student_page(row, rubric)
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # title/heading, reason, file name
    assert "<script" not in moodle_comment(row) and "&lt;script&gt;" in moodle_comment(row)
    assert "<script" not in cohort_page([row], rubric, tmp_path / "cohort.html").read_text(encoding="utf-8")


def test_problem_record_without_student(rubric: Rubric) -> None:
    items = [item("1", 0.0, "failed", "not graded"), item("2a", 0.0, "failed", "not graded"),
             item("2b", None, "manual"), item("3", 0.0, "failed", "not graded")]  # fmt: skip
    row = Row("zip-17", record("zip-17", items=items, problem="the zip file is corrupt", notebooks=[]))
    page = student_page(row, rubric)
    assert "zip-17" in page and '<div class="problem"><strong>This submission could not be graded:' in page
    assert "the zip file is corrupt" in page
    assert "Could not be graded: the zip file is corrupt" in moodle_comment(row)


def test_moodle_comment_content(rubric: Rubric) -> None:
    comment = moodle_comment(bob())
    assert comment.startswith("<p>Grade: 1 / 10 (raw 2, late penalty 1).") and "<html" not in comment
    assert "2 days late: 10% of the maximum deducted" in comment and "1 point awaiting a marker" in comment
    assert "2a (0/2): double(x): 12 of 13 values differ" in comment and "3 (0/5): `classify` raised" in comment
    assert "<br>1 (" not in comment  # full marks are not listed
    on_time = moodle_comment(Row("bob", record(), Student("1234567", "Bob Smith")))
    assert on_time.startswith("<p>Grade: 2 / 10.") and "late" not in on_time


def test_moodle_comment_is_bounded(rubric: Rubric) -> None:
    many = [item("3", 0.0, "failed", "<&>" * 300) for _ in range(40)]
    comment = moodle_comment(Row("bob", record(items=many, problem="x" * 5000), late=LATE))
    assert len(comment) <= 1500
    assert "more: see the feedback file.</p>" in comment
    assert max(len(m) for m in re.findall(r"(?:&lt;&amp;&gt;)+", comment)) <= 200  # each reason cut
    assert "<&>" not in comment


def test_write_pages(rubric: Rubric, tmp_path: Path) -> None:
    rows = [bob(), Row("zip-17", record("zip-17"))]
    paths = write_pages(rows, rubric, tmp_path / "pages")
    assert paths == [tmp_path / "pages" / "bob.html", tmp_path / "pages" / "zip-17.html"]
    assert paths[0].read_text(encoding="utf-8") == student_page(rows[0], rubric)
    assert sorted(p.name for p in (tmp_path / "pages").iterdir()) == ["bob.html", "zip-17.html"]  # no temp files
    with pytest.raises(ValueError):
        write_pages([Row("../up", record())], rubric, tmp_path / "pages")


def test_feedback_zip_single_student(rubric: Rubric, tmp_path: Path) -> None:
    row = Row("bob", record(), Student("1234567", "Bob_Smith/Jr\\"))
    path = feedback_zip([row, Row("nobody", record("nobody"))], rubric, tmp_path / "feedback.zip")
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["Bob Smith Jr_1234567_assignfeedback_file/feedback.html"]
        info = archive.infolist()[0]
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert archive.read(info).decode() == student_page(row, rubric)
    parts = info.filename.split("/")[0].split("_", 4)  # as Moodle's importer reads it
    assert parts[1:4] == ["1234567", "assignfeedback", "file"]
    assert [p.name for p in tmp_path.iterdir()] == ["feedback.zip"]


def test_feedback_zip_team(rubric: Rubric, tmp_path: Path) -> None:
    row = Row("team-7", record("team-7"), Student("900", "Team_7", team=True, members=("111", "222")))
    with zipfile.ZipFile(feedback_zip([row], rubric, tmp_path / "f.zip")) as archive:
        assert archive.namelist() == [
            "Team 7_111_assignfeedback_file/feedback.html",
            "Team 7_222_assignfeedback_file/feedback.html",
        ]
        assert {archive.read(n).decode() for n in archive.namelist()} == {student_page(row, rubric)}
    with zipfile.ZipFile(feedback_zip([], rubric, tmp_path / "empty.zip")) as archive:
        assert archive.namelist() == []


def test_cohort_page(rubric: Rubric, tmp_path: Path) -> None:
    def variant(name: str, *, a: float, three: tuple[float, str], problem: str = "") -> Row:
        items = [item("1", 2.0, "passed"), item("2a", a, "passed" if a == 2 else "failed", "values differ"),
                 item("2b", None, "manual"), item("3", three[0], three[1], "accuracy too low")]  # fmt: skip
        return Row(name, record(name, items=items, problem=problem))

    rows = [
        variant("a", a=0.0, three=(0.0, "failed")),
        variant("b", a=2.0, three=(2.5, "partial")),
        variant("c", a=2.0, three=(0.0, "error"), problem="kernel died"),
        variant("d", a=2.0, three=(5.0, "passed")),
        Row("e", record("e"), late=Late(days=3, penalty=3.0, not_assessed=True)),
    ]
    page = cohort_page(rows, rubric, tmp_path / "cohort.html").read_text(encoding="utf-8")
    assert page.count("<img ") == len(rubric.questions) + 1 == 4
    assert page.count('src="data:image/png;base64,') == 4 and "http" not in page
    assert "5 submissions graded. 1 could not be read (the submitted files); 1 late, 1 not assessed." in page
    assert "<th>Final grade (of 10)</th><td>4.3</td><td>4</td><td>0</td><td>9</td>" in page
    assert "<th>Raw points (of 10)</th><td>4.7</td><td>4</td><td>2</td><td>9</td>" in page
    table = page[page.index("Items most often not earned"):]
    three, two_a = table.index("sign classifier accuracy"), table.index("double(x) doubles an array")
    assert three < two_a  # item 3 missed by 4 submissions, 2a by 2
    assert "<td>4</td><td>1</td><td>accuracy too low</td>" in table  # one of them a grader error
    assert "<td>2</td><td>0</td><td>values differ</td>" in table
    assert "2b why doubling: 5 submissions" in page
    assert [p.name for p in tmp_path.iterdir()] == ["cohort.html"]


def test_the_cohort_page_says_per_submission_what_a_marker_must_look_at(rubric: Rubric, tmp_path: Path) -> None:
    referred = [item("1", None, "referred", "`answer` is not in trivial.ipynb, which follows another starter"),
                item("2a", 2.0, "passed"), item("2b", None, "manual"), item("3", 5.0, "passed")]
    other = record("alice", items=referred)
    other["notebooks"][0]["causes"] = ["code cell 1 imports `torchsummaryX`, which is not in the grading environment"]
    page = cohort_page([Row("bob", record("bob")), Row("alice", other)], rubric,
                       tmp_path / "cohort.html").read_text(encoding="utf-8")
    table = page[page.index("What a marker must look at"):page.index("Awaiting a marker")]
    assert table.index("alice") < table.index("bob")  # the most left to a person first
    assert ("<td>alice</td><td>7 of 9 points (78%)</td><td>1 (2 points)</td><td>1</td><td>trivial.ipynb: code cell 1 "
            "imports `torchsummaryX`, which is not in the grading environment</td>") in table
    assert "<td>bob</td><td>9 of 9 points (100%)</td><td>–</td><td>1</td><td>–</td>" in table


def test_cohort_page_without_rows(rubric: Rubric, tmp_path: Path) -> None:
    page = cohort_page([], rubric, tmp_path / "out" / "cohort.html").read_text(encoding="utf-8")
    assert "No submissions graded." in page and "<img" not in page
