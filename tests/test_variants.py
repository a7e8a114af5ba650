"""How variants.yaml is read: a variant may run the questions it breaks nothing in at their
smallest sizes, and then claims nothing there (tests/test_assignments.py grades them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autograder.authoring.variants import asserted_items, load_variants, proof_options
from autograder.course.assignment import Assignment
from autograder.errors import AssignmentError, UsageError

from .conftest import trivial_copy

SMALLEST = {"smallest": {"3": {"SCALE": 1, "POINTS": 10}}, "parameters": {"SCALE": 3}}


def _assignment(folder: Path, variants: list[dict]) -> Assignment:
    trivial_copy(folder, synthetic=SMALLEST)
    (folder / "variants.yaml").write_text(yaml.safe_dump({"variants": variants}), encoding="utf-8")
    return Assignment(folder / "rubric.yaml")


def _variant(**fields) -> dict:
    return {"name": "v", "about": "a variant", "edits": [{"notebook": "trivial.ipynb", "find": "a", "replace": "b"}],
            **fields}


def test_a_variant_runs_the_questions_it_names_small_and_the_proof_skips_their_items(tmp_path: Path):
    assignment = _assignment(tmp_path, [_variant(loses=["2a"], small=["3"], options={"parameters": {"POINTS": 99}})])
    [variant] = load_variants(assignment)
    options = proof_options(assignment, variant)
    assert options.synthetic and options.notebooks == ("trivial.ipynb",)
    assert dict(options.parameters) == {"SCALE": 1, "POINTS": 99}  # the smallest sizes, then its own options
    assert options.notebook_parameters(assignment.rubric, None)["SCALE"] == 1
    assert asserted_items(assignment, variant) == {"1", "2a"}  # item 3's question ran small
    assert asserted_items(assignment, None) == {"1", "2a", "3"}  # the reference: every automatic item
    assert options.questions == ("1", "2")  # the checks of a question run small are not run at all


def test_a_grading_of_some_questions_runs_only_their_checks(tmp_path: Path):
    from autograder.grading.pipeline import GradeOptions, grade_submission

    from .assignments.trivial.solution import write_solution

    assignment = _assignment(tmp_path / "course", [])
    write_solution(tmp_path / "sub" / "trivial.ipynb")
    grade = grade_submission(assignment, tmp_path / "sub", options=GradeOptions(questions=("1", "3")),
                             sandbox="local")
    by_id = {item.id: item for item in grade.items}
    assert by_id["1"].status == "passed" and by_id["3"].status == "passed"
    assert by_id["2a"].status == "not-checked" and by_id["2a"].points is None
    assert "question 2 was not selected" in by_id["2a"].reason
    with pytest.raises(UsageError, match="questions"):
        GradeOptions(questions="1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"loses": ["3"], "small": ["3"]}, "variant v: item '3' is claimed but its question runs small"),
        ({"loses": ["2a"], "small": ["2"]}, "variant v: small question '2' has no synthetic.smallest parameters"),
        ({"loses": "all", "small": ["3"]}, "variant v: loses all, so no question can run small"),
        ({"loses": ["9z"]}, "variant v: item '9z' is not in the rubric"),
        ({"loses": ["1"], "partial": ["2a"]}, "variant v: partial items must be among the items it loses"),
    ],
)
def test_a_variant_that_claims_what_its_proof_cannot_show_is_refused(tmp_path: Path, fields, problem):
    assignment = _assignment(tmp_path, [_variant(**fields)])
    with pytest.raises(AssignmentError) as caught:
        load_variants(assignment)
    assert str(assignment.variants_path) in str(caught.value) and problem in str(caught.value)


def test_a_rubrics_smallest_sizes_name_its_questions(tmp_path: Path):
    trivial_copy(tmp_path, synthetic={"smallest": {"Q9": {"SCALE": 1}}})
    with pytest.raises(Exception, match="synthetic.smallest names question 'Q9'"):
        _ = Assignment(tmp_path / "rubric.yaml").rubric


def test_a_rubrics_unproven_thresholds_name_its_automatic_items(tmp_path: Path):
    trivial_copy(tmp_path, synthetic={"unproven": {"9.9z": "a budget too short"}})
    with pytest.raises(Exception, match="synthetic.unproven names item '9.9z', which is not an automatic item"):
        _ = Assignment(tmp_path / "rubric.yaml").rubric
