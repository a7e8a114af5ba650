"""Question 3: the deep MLPs of the handout's tables, their test accuracy on labels the
kernel never had, and the parameter counts."""

import pytest

from autograder.checking import CheckFailed, as_number
from autograder.checks.layers import expect_table, table, trace_any
from autograder.checks.training import accuracy


@pytest.mark.item("3.1a")
def test_deep_mlp(nb, assignment, given):
    shapes = assignment.module("splits").SHAPES
    expect_table(trace_any(nb, given["model"], shapes), given["layers"], (784,), what=given["model"])


@pytest.mark.item("3.2a")
def test_wide_mlp(nb, assignment, given):
    shapes = assignment.module("splits").SHAPES
    expect_table(trace_any(nb, given["model"], shapes), given["layers"], (784,), what=given["model"])


@pytest.mark.item("3.1b")
def test_deep_accuracy(nb, assignment, data, given, measure):
    test, y_test = assignment.module("splits").scores(nb, given["model"], assignment, data, "x_test")
    measure(accuracy(test, y_test), note=f"{len(y_test)} test images")


@pytest.mark.item("3.2b")
def test_wide_accuracy(nb, assignment, data, given, measure):
    test, y_test = assignment.module("splits").scores(nb, given["model"], assignment, data, "x_test")
    measure(accuracy(test, y_test), note=f"{len(y_test)} test images")


def _count(nb, assignment, given):
    """The handout's count (the grader's build of the table of ``given['of']``), and the
    student's: either is right when the student's network differs from the table (3.1a or
    3.2a already loses for that), since 3.3 asks for the networks they trained."""
    rows = assignment.rubric.given(given["of"])["layers"]
    handout = sum(layer.params for layer in table(rows, (784,)))
    counted = as_number(nb.get(given["answer"]), given["answer"])
    if counted == handout:
        return
    own = trace_any(nb, given["model"], assignment.module("splits").SHAPES).total
    if counted != own:
        raise CheckFailed(f"{given['answer']} is {counted:,.0f}; the handout's network has {handout:,} parameters "
                          f"(weights and biases), and `{given['model']}` has {own:,}")


@pytest.mark.item("3.3-deep")
def test_params_deep(nb, assignment, given):
    _count(nb, assignment, given)


@pytest.mark.item("3.3-wide")
def test_params_wide(nb, assignment, given):
    _count(nb, assignment, given)
