"""Students of the real courses, as they write: every automatic item earns what a careful
marker gives it, or goes to a marker with its reason; none is silently 0 and none is the
grader's error (``tests/corpus``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.course.assignment import load_assignment
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission

from .corpus import cases, expected, submission

CASES = cases()


@pytest.mark.parametrize(("assignment_id", "student"), CASES, ids=[f"{a}:{s}" for a, s in CASES])
def test_a_student_of_the_course_earns_what_a_careful_marker_gives(assignment_id: str, student: str,
                                                                 tmp_path: Path):
    assignment = load_assignment(assignment_id)
    want = expected(assignment_id)[student]
    opened = open_submission(submission(assignment_id, student, tmp_path / student))
    try:
        grade = grade_submission(assignment, opened, options=GradeOptions(synthetic=True), sandbox="local")
    finally:
        opened.close()
    automatic = {item.id: item for item in grade.items if item.status.automatic}
    assert set(want["marker"]) == set(automatic), "expected.yaml lists every automatic item"
    wrong = {}
    for item_id, item in automatic.items():
        if item_id in want.get("referred", []):
            if item.status != "referred":
                wrong[item_id] = f"should go to a marker; {item.status} {item.points}: {item.reason}"
        elif item.status in ("referred", "error") or item.points != pytest.approx(want["marker"][item_id]):
            wrong[item_id] = f"a careful marker gives {want['marker'][item_id]}; {item.status} {item.points}: " \
                             f"{item.reason}"
    assert not wrong, wrong
