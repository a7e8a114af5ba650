"""Rubric validation: a broken rubric names the file, the item and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autograder.course.rubric import Band, Metric, Tolerance, load_rubric, parse_rubric
from autograder.errors import RubricError

GOOD = {
    "assignment": "demo",
    "title": "Demo",
    "total_points": 5,
    "notebooks": [{"file": "a.ipynb", "questions": ["1", "2"]}],
    "questions": [
        {"id": "1", "title": "one", "points": 2, "items": [{"id": "1a", "title": "x", "points": 2}]},
        {
            "id": "2",
            "title": "two",
            "points": 3,
            "items": [
                {"id": "2a", "title": "y", "points": 1},
                {"id": "2b", "title": "z", "points": 2, "kind": "manual"},
            ],
        },
    ],
}


def problems_of(raw) -> list[str]:
    with pytest.raises(RubricError) as caught:
        parse_rubric(raw, "rubric.yaml")
    assert "rubric.yaml" in str(caught.value)
    return caught.value.problems


def changed(path: list, value):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


def test_a_valid_rubric_loads():
    rubric = parse_rubric(GOOD, "rubric.yaml")
    assert [i.id for _, i in rubric.items()] == ["1a", "2a", "2b"]
    assert rubric.notebook_for("2") == "a.ipynb"


def test_a_bad_field_names_question_item_and_field():
    (problem,) = problems_of(changed(["questions", 1, "items", 0, "points"], -1))
    assert problem.startswith("question '2' › item '2a' › field 'points'")


def test_an_unknown_field_is_refused():
    (problem,) = problems_of(changed(["questions", 0, "items", 0, "pionts"], 3))
    assert "item '1a' › field 'pionts'" in problem


def test_item_points_must_add_up_to_the_question():
    (problem,) = problems_of(changed(["questions", 1, "points"], 4))
    assert "question '2'" in problem and "add up to 3" in problem and "worth 4" in problem


def test_questions_must_add_up_to_the_total():
    (problem,) = problems_of(changed(["total_points"], 100))
    assert "questions add up to 5 but total_points is 100" in problem


def test_duplicate_ids_and_unplaced_questions_are_named():
    raw = changed(["questions", 1, "items", 0, "id"], "1a")
    raw["notebooks"][0]["questions"] = ["1", "9"]
    (problem,) = problems_of(raw)
    assert "item id '1a' is used twice" in problem
    assert "question '9'" in problem and "question '2' must be graded from exactly one notebook" in problem


def test_a_numeric_id_gets_a_quoting_hint():
    (problem,) = problems_of(changed(["questions", 0, "items", 0, "id"], 4.1))
    assert "item 4.1 › field 'id'" in problem and 'quote it: "4.1"' in problem


def test_a_manual_item_cannot_have_a_metric():
    metric = {"name": "acc", "direction": "higher", "bands": [{"threshold": 0.9, "fraction": 1.0}]}
    (problem,) = problems_of(changed(["questions", 1, "items", 1, "metric"], metric))
    assert "item '2b'" in problem and "manual item" in problem


def test_a_tolerance_says_why():
    (problem,) = problems_of(changed(["questions", 1, "items", 0, "tolerance"], {"abs": 0.01}))
    assert "item '2a'" in problem and "a tolerance says `why`" in problem
    fine = changed(["questions", 1, "items", 0, "tolerance"], {"abs": 0.01, "why": "a hand calculation to 2 decimals"})
    assert parse_rubric(fine, "rubric.yaml").item("2a")[1].tolerance.why == "a hand calculation to 2 decimals"


@pytest.mark.parametrize("assignment", ["ece4179-2023", "ee046211-hw2"])
def test_every_tolerance_of_the_assignments_says_why(assignment):
    rubric = load_rubric(Path(__file__).parents[1] / "rubrics" / assignment / "rubric.yaml")
    tolerances = {item.id: item.tolerance for _, item in rubric.items() if item.tolerance}
    assert tolerances and all(len(t.why) > 20 for t in tolerances.values())


def test_bands_must_go_from_strict_to_lenient():
    bands = [{"threshold": 0.8, "fraction": 0.5}, {"threshold": 0.9, "fraction": 1.0}]
    metric = {"name": "acc", "direction": "higher", "bands": bands}
    (problem,) = problems_of(changed(["questions", 1, "items", 0, "metric"], metric))
    assert "item '2a' › field 'metric'" in problem and "strictest" in problem


def test_yaml_errors_give_the_line(tmp_path: Path):
    path = tmp_path / "rubric.yaml"
    path.write_text("assignment: x\nquestions: [\n  - id: 1\n", encoding="utf-8")
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    assert str(path) in str(caught.value) and "line " in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric(tmp_path / "nope.yaml")


def test_tolerance_is_absolute_plus_relative():
    tol = Tolerance(abs=0.01, rel=0.1)
    assert tol.allows(10.9, 10.0) and not tol.allows(11.2, 10.0)
    assert not tol.allows(float("nan"), 1.0)


def test_bands_give_fractions_and_tolerance_loosens_them():
    metric = Metric(
        name="acc",
        direction="higher",
        bands=[Band(threshold=0.89, fraction=1.0), Band(threshold=0.85, fraction=0.5)],
        tolerance=0.005,
    )
    assert metric.fraction_for(0.90, None)[0] == 1.0
    assert metric.fraction_for(0.886, None)[0] == 1.0  # within the tolerance
    assert metric.fraction_for(0.88, None)[0] == 0.5
    assert metric.fraction_for(0.80, None)[0] == 0.0
    assert metric.fraction_for(float("nan"), None)[0] == 0.0


def test_bands_relative_to_a_reference():
    metric = Metric(
        name="mse",
        direction="lower",
        relative_to="reference",
        bands=[Band(threshold=0.05, fraction=1.0), Band(threshold=0.5, fraction=0.5)],
    )
    assert metric.fraction_for(0.04, reference=0.01)[0] == 1.0
    assert metric.fraction_for(0.2, reference=0.01)[0] == 0.5
    assert metric.fraction_for(0.6, reference=0.01)[0] == 0.0
    with pytest.raises(ValueError, match="reference"):
        metric.fraction_for(0.04, reference=None)
