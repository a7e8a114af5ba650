"""Every course assignment, proven both ways: its reference earns every automatic point,
and each broken variant loses exactly the items it declares. Also: the rubric is valid,
the checks match it, and the committed templates and public data are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.authoring.variants import (
    asserted_items,
    automatic_items,
    build_variant,
    expected_losses,
    load_variants,
    lost_items,
    proof_options,
)
from autograder.course.assignment import available, load_assignment
from autograder.course.templates import stale
from autograder.grading.check import collect_problems
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission

ASSIGNMENTS = available()
CASES = [(a, None) for a in ASSIGNMENTS] + [
    (a, v.name) for a in ASSIGNMENTS for v in load_variants(load_assignment(a))
]


def test_the_course_assignments_are_found():
    assert "ece4179-2023" in ASSIGNMENTS


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_checks_match_the_rubric(assignment_id):
    assert collect_problems(load_assignment(assignment_id)) == []


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_templates_and_public_data_are_current(assignment_id):
    assert stale(load_assignment(assignment_id)) == []


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_every_automatic_item_is_broken_by_some_variant(assignment_id):
    assignment = load_assignment(assignment_id)
    covered = set()
    for variant in load_variants(assignment):
        if variant.loses != "all":
            covered |= set(variant.loses)
    assert automatic_items(assignment) - covered == set()


@pytest.mark.parametrize(("assignment_id", "variant_name"), CASES, ids=[f"{a}:{v or 'reference'}" for a, v in CASES])
def test_grading_loses_exactly_the_broken_items(assignment_id, variant_name, tmp_path: Path):
    assignment = load_assignment(assignment_id)
    variant = next((v for v in load_variants(assignment) if v.name == variant_name), None)
    if variant is None:
        folder, options, expected, partial = assignment.reference_dir, GradeOptions(synthetic=True), set(), set()
    else:
        folder = build_variant(assignment, variant, tmp_path / variant.name)
        # Only the notebooks the variant changes run (the others are the reference's, graded
        # above), and the questions it names `small` at their smallest sizes.
        options = proof_options(assignment, variant)
        expected, partial = expected_losses(assignment, variant), set(variant.partial)
    grade = grade_submission(assignment, open_submission(folder), options=options, sandbox="local")
    reasons = {item.id: f"{item.status}: {item.reason}" for item in grade.items}
    lost = lost_items(grade) & asserted_items(assignment, variant)  # what ran at its synthetic size
    assert lost == expected, {i: reasons[i] for i in lost ^ expected}
    referred = set(variant.referred) if variant is not None else set()
    for item in grade.items:
        if item.id in partial:
            assert 0 < item.points < item.max_points, reasons[item.id]
        if item.id in referred:
            assert item.status == "referred", reasons[item.id]
        elif item.id in expected - partial:
            assert item.points == 0, reasons[item.id]
        assert item.status != "error", reasons[item.id]  # a grader-side failure is never a verdict
    for item_id, words in (variant.says if variant is not None else {}).items():
        assert words in reasons[item_id], reasons[item_id]
