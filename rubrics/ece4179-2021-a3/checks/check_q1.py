"""Question 1: the shallow CNN of Table 1, its test accuracy on labels the kernel never had,
its most confident right and wrong answers per class and its confusion matrices. The
network is run on the grader's copy of the course's pictures, fed as it does best on the
training pictures (``splits``)."""

from contextlib import contextmanager

import numpy as np
import pytest

from autograder.checking import CheckFailed
from autograder.checks.classification import (
    confusion,
    expect_confusion_function,
    expect_top_k_function,
    expect_top_k_result,
    matrix_form,
)
from autograder.checks.layers import expect_table, trace
from autograder.checks.training import accuracy, softmax
from autograder.errors import NotDefined, Referred

SHAPE = (3, 96, 96)


@pytest.mark.item("1.1a")
def test_shallow_cnn(nb, given):
    expect_table(trace(nb, "shallow_cnn", SHAPE), given["layers"], SHAPE, what="shallow_cnn")


@pytest.mark.item("1.1b")
def test_shallow_accuracy(nb, assignment, data, given, measure):
    scores, labels = assignment.module("splits").scores(nb, given["model"], assignment, data, "test")
    measure(accuracy(scores, labels), note=f"{len(labels)} test images")
    predicted = scores.argmax(axis=1)
    rows = "; ".join(" ".join(str(v) for v in row) for row in confusion(labels, predicted, 10))
    measure(float(np.trace(confusion(labels, predicted, 10))), name="test images classified correctly (for 1.4c)",
            note=f"the grader's test confusion matrix, rows true, columns predicted: {rows}")


def _recomputed(nb, assignment, data, split):
    """shallow_cnn's scores on ``split`` as the notebook computed its own results: through its
    transform when the grader finds one (``shallow_transform``), else fed as the grader
    feeds it; and whether they went through the notebook's own transform."""
    splits = assignment.module("splits")
    try:
        return splits.scores(nb, "shallow_cnn", assignment, data, split, transform="shallow_transform"), True
    except (NotDefined, Referred):  # a transform of batched tensors, or none the grader can find
        return splits.scores(nb, "shallow_cnn", assignment, data, split), False


@contextmanager
def _compared(own, what):
    """The notebook's own results compared with the grader's recomputation: where the grader
    could not use the notebook's transform, a difference is a marker's to judge."""
    try:
        yield
    except CheckFailed as error:
        if own:
            raise
        raise Referred(f"{error} (the grader found no transform of the notebook's for one picture, so it fed the "
                       f"pictures the way shallow_cnn does best, and {what} may differ by that alone: a marker "
                       "compares them)") from None


def _top(nb, assignment, data, given):
    expect_top_k_function(nb, given["function"], correct=given["correct"], either_grouping=not given["correct"])
    (scores, labels), own = _recomputed(nb, assignment, data, "val")
    with _compared(own, given["result"]):
        expect_top_k_result(nb.get(given["result"]), softmax(scores), labels, what=given["result"],
                            correct=given["correct"], either_grouping=not given["correct"])


@pytest.mark.item("1.2a")
def test_top5_correct(nb, assignment, data, given):
    _top(nb, assignment, data, given)


@pytest.mark.item("1.3a")
def test_top5_misclassified(nb, assignment, data, given):
    _top(nb, assignment, data, given)


@pytest.mark.item("1.4a")
def test_confusion_function(nb):
    expect_confusion_function(nb, "confusion_matrix")


@pytest.mark.item("1.4b")
def test_confusion_matrices(nb, assignment, data, given):
    for name, split in (("cm_train", "train"), ("cm_val", "val")):
        (scores, labels), own = _recomputed(nb, assignment, data, split)
        counts = confusion(labels, scores.argmax(axis=1), 10)
        slack = int(given["slack"] * len(labels)) + 1
        with _compared(own, name):
            try:
                matrix_form(nb.get(name), counts, what=name, slack=slack)
            except CheckFailed as failed:
                raise CheckFailed(f"{failed} (the grader ran shallow_cnn on the {len(labels)} {split} "
                                  "pictures)") from None
