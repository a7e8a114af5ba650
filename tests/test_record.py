"""The grade record: written once by the grader, read back by every reader with the same totals.

A two-notebook copy of the toy assignment is graded by the real grader three ways (in full,
public items only, and one notebook standing for its items, as a self-check does); each
``grade.json`` is then read back and its totals compared across the gradebook, the feedback
page, Gradescope's ``results.json`` and the terminal tables.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from autograder.course.assignment import load_assignment
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission
from autograder.grading.record import Finding, Grade, ItemGrade, Late, Level, Status
from autograder.grading.report import load_grade, render_check, render_text
from autograder.marking.gradescope import results as gradescope_results
from autograder.marking.publish import FEEDBACK_DIR, GRADEBOOK, MarkerFiles, publish
from autograder.sandboxes.sandbox import LocalSandbox

from .conftest import TRIVIAL, TRIVIAL_CELLS, write_notebook

#: what each way of grading must give for the submission below (its ``double`` is wrong):
#: automatic points, automatic maximum, awaiting a marker, maximum
EXPECTED = {
    "full": (7.0, 9.0, 1.0, 10.0),  # items 1 (2) and 3 (5) earned, 2a (2) not; 2b (1) manual
    "public": (5.0, 7.0, 1.0, 10.0),  # item 1 is hidden: not checked
    "single": (5.0, 5.0, 1.0, 10.0),  # second.ipynb alone: only item 3 checked; 2b is marked by hand all the same
}
KINDS = {
    "full": GradeOptions(),
    "public": GradeOptions(public_only=True),
    "single": GradeOptions(public_only=True, notebooks=("second.ipynb",)),
}


def _two_notebooks(folder: Path) -> Path:
    """The toy assignment with question 3 in a notebook of its own."""
    (folder / "checks").mkdir(parents=True)
    for source in (TRIVIAL / "checks").glob("*.py"):
        (folder / "checks" / source.name).write_bytes(source.read_bytes())
    rubric = (TRIVIAL / "rubric.yaml").read_text(encoding="utf-8")
    split = ('  - file: trivial.ipynb\n    questions: ["1", "2"]\n'
             '  - file: second.ipynb\n    questions: ["3"]\n')
    rubric, count = re.subn(r'  - file: trivial\.ipynb\n    questions: \["1", "2", "3"\]\n', split, rubric)
    assert count == 1
    (folder / "rubric.yaml").write_text(rubric, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The assignment, and a results folder with one submission graded each way."""
    base = tmp_path_factory.mktemp("record")
    assignment = load_assignment(_two_notebooks(base / "assignment"))
    submission = base / "jane"
    write_notebook(submission / "trivial.ipynb", TRIVIAL_CELLS[0], "def double(x):\n    return x")
    write_notebook(submission / "second.ipynb", "import numpy as np", TRIVIAL_CELLS[2])
    results = base / "results"
    sandbox = LocalSandbox()
    for kind, options in KINDS.items():
        path = submission / "second.ipynb" if kind == "single" else submission
        opened = open_submission(path)
        try:
            grade_submission(assignment, opened, options=options, sandbox=sandbox, out=results / kind)
        finally:
            opened.close()
    return assignment.rubric_path.parent, results


def _record(results: Path, kind: str) -> dict:
    return json.loads((results / kind / "grade.json").read_text(encoding="utf-8"))


def _sums(record: dict) -> tuple[float, float, float, float]:
    """The four totals, summed straight from the record's items, without the record's code."""
    items = record["items"]
    automatic = [i for i in items if i["status"] in ("passed", "partial", "failed", "error")]
    return (sum(i["points"] or 0 for i in automatic), sum(i["max_points"] for i in automatic),
            sum(i["max_points"] for i in items if i["status"] in ("manual", "planned")),
            sum(i["max_points"] for i in items))


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_record_written_holds_the_totals_of_its_items(graded, kind: str):
    record = _record(graded[1], kind)
    assert _sums(record) == EXPECTED[kind]
    totals = record["totals"]
    assert (totals["auto_points"], totals["auto_max"], totals["awaiting_marker"], totals["max"]) == EXPECTED[kind]
    assert record["schema"] == 1 and record["digest"] and record["graded_at"]
    assert record["public_only"] == (kind != "full")


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_reader_gives_the_same_totals(graded, kind: str, tmp_path: Path):
    root, results = graded
    assignment = load_assignment(root)
    auto, auto_max, awaiting, maximum = EXPECTED[kind]
    grade = load_grade(results / kind)
    assert grade is not None
    assert (grade.auto_points, grade.auto_max, grade.awaiting_marker, grade.total_max) == EXPECTED[kind]
    assert grade.raw == auto  # no marks entered yet

    # the terminal: the grade table and the student's self-check
    header = render_text(grade).splitlines()[0]
    assert f"automatic {auto:g} / {auto_max:g}" in header
    assert f"awaiting a marker {awaiting:g}" in header and f"maximum {maximum:g}" in header
    console = Console(record=True, width=200, color_system=None)
    render_check(grade, console=console, cell_timeout=30)
    assert f"public automatic items: {auto:g} / {auto_max:g}" in console.export_text()

    # the gradebook and the feedback page, from the results folder
    published = publish(assignment, results, MarkerFiles())
    with (results / GRADEBOOK).open(newline="", encoding="utf-8") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    row = rows[kind]
    assert (float(row["raw"]), float(row["maximum"]), float(row["awaiting_marker"]), float(row["final"])) == (
        auto, maximum, awaiting, auto)
    assert sum(float(row[i.id]) for i in grade.items if row[i.id]) == auto
    page = (results / FEEDBACK_DIR / f"{kind}.html").read_text(encoding="utf-8")
    assert f"<td>{auto:g} / {maximum:g}</td>" in page
    assert ("<th>Awaiting a marker</th>" in page) == bool(awaiting)
    if awaiting:
        assert f"<th>Awaiting a marker</th><td>{awaiting:g} point" in page
    assert {r.submission for r in published.rows} == set(KINDS)

    # Gradescope: the automatic items are its tests
    out = gradescope_results(grade, assignment.rubric, late=Late(), seconds=1.0)
    assert out["score"] == auto
    assert sum(test["score"] for test in out["tests"]) == auto
    assert sum(test["max_score"] for test in out["tests"]) == auto_max
    public = [t for t in out["tests"] if t["visibility"] == "visible"]
    said = f"Public items: {sum(t['score'] for t in public):g} / {sum(t['max_score'] for t in public):g}."
    assert out["output"].startswith(said)  # the hidden items' share is not in it


def test_a_record_read_back_is_the_record_written(graded):
    for kind in KINDS:
        record = _record(graded[1], kind)
        grade = Grade.from_record(record)
        assert grade.to_record() == record
        assert all(isinstance(item.status, Status) for item in grade.items)


def test_a_marker_s_marks_enter_raw_and_leave_awaiting(graded):
    grade = load_grade(graded[1] / "full")
    assert grade is not None
    marked = grade.with_marks({"2b": 0.5, "2a": 2.0})  # 2a has automatic points: a mark does not replace them
    assert {i.id: i.status for i in marked.items}["2b"] is Status.MARKED
    assert {i.id: i.points for i in marked.items}["2a"] == 0.0
    assert (marked.raw, marked.awaiting_marker, marked.auto_points) == (7.5, 0.0, 7.0)
    assert grade.awaiting_marker == 1.0  # the grade it came from is unchanged


def test_an_older_or_newer_record_is_read_with_defaults_for_what_it_lacks():
    grade = Grade.from_record({"assignment": "a", "submission": "s", "future_field": 1,
                               "items": [{"id": "1", "max_points": 2, "points": 1, "status": "partial",
                                          "something_new": True}],
                               "findings": [{"level": "warning", "file": "x.ipynb", "message": "m"}]})
    assert grade.items[0] == ItemGrade(id="1", question="", title="", kind="auto", visibility="public",
                                       max_points=2, points=1, status=Status.PARTIAL)
    assert grade.findings == [Finding(Level.WARNING, "x.ipynb", "m")]
    assert (grade.auto_points, grade.auto_max, grade.total_max) == (1, 2, 2)


def test_statuses_are_one_enum_that_reads_as_its_value():
    assert [s for s in Status if s.automatic] == [Status.PASSED, Status.PARTIAL, Status.FAILED, Status.ERROR,
                                                  Status.REFERRED]
    assert [s for s in Status if s.awaiting] == [Status.ERROR, Status.MANUAL, Status.PLANNED, Status.REFERRED]
    assert Status("not-checked") is Status.NOT_CHECKED and f"{Status.ERROR:>6}" == " error"
    assert json.dumps({"s": Status.PASSED}) == '{"s": "passed"}'
    with pytest.raises(ValueError):
        Status("done")


def test_a_reference_the_grader_failed_on_is_not_proven():
    """verify's verdict: an item whose check raised has its points withheld (awaiting a
    marker), so the earned points equal the scored ones; the reference is still not proven."""
    from autograder.authoring.verify import Verification

    items = [{"id": "1", "max_points": 2, "points": 2, "status": "passed"},
             {"id": "2", "max_points": 3, "points": None, "status": "error", "reason": "grader error: KeyError"}]
    grade = Grade.from_record({"assignment": "a", "submission": "s", "items": items})
    assert grade.auto_points == grade.auto_max == 2
    failed = Verification(grade, 1.0)
    assert not failed.complete and failed.failed_on == ["2"]
    items[1].update(points=3, status="passed", reason="")
    assert Verification(Grade.from_record({"assignment": "a", "submission": "s", "items": items}), 1.0).complete
