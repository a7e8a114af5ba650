"""Question 4: a deep network trained fully with Adam on data with a shortcut. The training
accuracy is measured by the grader with its own copy of the training labels; the test
accuracy, on labels the kernel never had, is shown to the marker beside the plot items."""

import pytest

from autograder.checking import CheckFailed
from autograder.checks.layers import trace
from autograder.checks.training import accuracy, class_scores, optimizer

DATASET = "hw2-q4"


@pytest.mark.item("4.1a")
def test_hidden_layers(nb, given):
    found = trace(nb, "q4_model", (784,))
    if found.hidden_layers() < given["hidden"]:
        raise CheckFailed(f"q4_model has {found.hidden_layers()} hidden layer(s) (a layer with weights followed "
                          f"by a nonlinearity, on the forward pass); the handout asks for {given['hidden']} at least")


@pytest.mark.item("4.1b")
def test_adam(nb):
    optimizer(nb, "q4_optimizer", "q4_model").expect(("Adam", "AdamW"), what="q4_optimizer", model="q4_model")


@pytest.mark.item("4.1c")
def test_trained_fully(nb, assignment, data, measure):
    dataset = assignment.dataset(DATASET)
    for key, truth in (("x_train", dataset.visible(data.source)["y_train"]),
                       ("x_test", dataset.heldout(data.source)["y_test"])):
        found = class_scores(nb, "q4_model", f'load_q4(DATA_DIR)["{key}"]', count=len(truth), classes=10, what=key)
        if key == "x_test":
            measure(accuracy(found, truth), name="test accuracy (for 4.1d and 4.1e)")
        else:
            measure(accuracy(found, truth), note=f"{len(truth)} training images")
