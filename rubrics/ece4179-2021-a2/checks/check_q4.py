"""Question 4: a deep network trained fully with Adam on data with a shortcut. The training
accuracy is measured by the grader with its own copy of the training labels; the test
accuracy, on labels the kernel never had, is shown to the marker beside the plot items."""

import pytest

from autograder.checking import CheckFailed
from autograder.checks.layers import trace_any
from autograder.checks.training import accuracy, optimizer

DATASET = "hw2-q4"


@pytest.mark.item("4.1a")
def test_hidden_layers(nb, assignment, given):
    found = trace_any(nb, "q4_model", assignment.module("splits").SHAPES)
    if found.hidden_layers() < given["hidden"]:
        raise CheckFailed(f"q4_model has {found.hidden_layers()} hidden layer(s) (a layer with weights followed "
                          f"by a nonlinearity, on the forward pass); the handout asks for {given['hidden']} at least")


@pytest.mark.item("4.1b")
def test_adam(nb):
    optimizer(nb, "q4_optimizer", "q4_model").expect(("Adam", "AdamW"), what="q4_optimizer", model="q4_model")


@pytest.mark.item("4.1c")
def test_trained_fully(nb, assignment, data, measure):
    scores = assignment.module("splits").scores
    for key in ("x_train", "x_test"):
        found, truth = scores(nb, "q4_model", assignment, data, key, dataset=DATASET)
        if key == "x_test":
            measure(accuracy(found, truth), name="test accuracy (for 4.1d and 4.1e)")
        else:
            measure(accuracy(found, truth), note=f"{len(truth)} training images")
