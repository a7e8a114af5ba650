"""Checks of the toy assignment."""

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array, expect_allclose, expect_close


@pytest.mark.item("1")
def test_answer(nb, given, tolerance):
    expect_close(nb.get("answer"), given["expected"], tol=tolerance, what="answer")


@pytest.mark.item("2a")
def test_double(nb, tolerance):
    x = np.linspace(-3, 3, 13)
    expect_allclose(nb.call("double", x), 2 * x, tol=tolerance, what="double(x)")


@pytest.mark.item("3")
def test_accuracy(nb, measure):
    rng = np.random.default_rng(7)
    points = rng.normal(size=200)
    labels = (points > 0).astype(int)  # stays on the grader's side
    predicted = as_array(nb.call("classify", points), "classify(points)", shape=labels.shape)
    if not np.isin(predicted, (0, 1)).all():
        raise CheckFailed("classify should return labels 0 or 1")
    measure(float((predicted == labels).mean()))
