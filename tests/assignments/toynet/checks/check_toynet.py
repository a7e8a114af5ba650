"""Checks of the toy network assignment, written with the shared helpers. The data reaches
the kernel as the grader's own arrays: no loader of the notebook's is needed."""

import pytest

from autograder.checking import CheckFailed
from autograder.checks.layers import expect_table, trace
from autograder.checks.training import accuracy, cross_entropy, optimizer, outputs, trained_further


@pytest.mark.item("1a")
def test_layers(nb, given):
    expect_table(trace(nb, "net", (8,)), given["layers"], (8,), what="net")


@pytest.mark.item("1b")
def test_optimizer(nb):
    optimizer(nb, "opt", "net").expect(("SGD",), what="opt", model="net")


@pytest.mark.item("1c")
def test_converged(nb, assignment, data, given):
    visible = assignment.dataset("toy-blobs").visible(data.source)
    labels = visible["y_train"]
    further = trained_further(nb, "net", "opt", visible["x_train"].astype("float32"), labels, epochs=given["epochs"],
                              batch=given["batch"])
    before, after = cross_entropy(further.before, labels), cross_entropy(further.after, labels)
    if before - after > 0.02 * before + 0.01:
        raise CheckFailed(f"two more epochs lower the training loss from {before:.4f} to {after:.4f}")


@pytest.mark.item("1d")
def test_hidden(nb):
    if trace(nb, "net", (8,)).hidden_layers() < 1:
        raise CheckFailed("net has no hidden layer")


@pytest.mark.item("1e")
def test_accuracy(nb, assignment, data, measure):
    labels = assignment.dataset("toy-blobs").heldout(data.source)["y_test"]
    images = assignment.dataset("toy-blobs").visible(data.source)["x_test"].astype("float32")
    measure(accuracy(outputs(nb, "net", images, what="net's outputs"), labels))
