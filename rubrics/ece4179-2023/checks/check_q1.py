"""Question 1: the MLP of Figure 1 by hand. Expected values come from the weights the
rubric declares (Table 1), computed here with torch autograd at check time."""

import pytest
import torch
import torch.nn.functional as F

from autograder.checking import expect_close

LAYER1 = (("w13", "w14", "w15"), ("w23", "w24", "w25"))  # rows: inputs 1, 2; columns: neurons 3, 4, 5
LAYER2 = ("w36", "w46", "w56")


def network(given):
    weights = given["weights"]
    w1 = torch.tensor([[weights[n] for n in row] for row in LAYER1], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([weights[n] for n in LAYER2], dtype=torch.float64, requires_grad=True)
    x = torch.tensor(given["x"], dtype=torch.float64)
    return x, w1, w2


def forward(x, w1, w2):
    return torch.sigmoid(torch.relu(x @ w1) @ w2)


def bce(output, label):
    return F.binary_cross_entropy(output, torch.tensor(float(label), dtype=torch.float64))


def updated_weight(given):
    """The weight named ``given['weight']`` after one SGD step on (x, y)."""
    x, w1, w2 = network(given)
    bce(forward(x, w1, w2), given["y"]).backward()
    name = given["weight"]
    if name in LAYER2:
        index = LAYER2.index(name)
        value, grad = w2[index], w2.grad[index]
    else:
        row = next(r for r, names in enumerate(LAYER1) if name in names)
        column = LAYER1[row].index(name)
        value, grad = w1[row, column], w1.grad[row, column]
    return (value - given["lr"] * grad).item()


def check_answer(nb, given, tolerance, expected):
    expect_close(nb.get(given["answer"]), expected, tol=tolerance, what=given["answer"])


@pytest.mark.item("1.1")
def test_output(nb, given, tolerance):
    check_answer(nb, given, tolerance, forward(*network(given)).item())


@pytest.mark.item("1.2")
def test_loss_for_label_0(nb, given, tolerance):
    check_answer(nb, given, tolerance, bce(forward(*network(given)), given["y"]).item())


@pytest.mark.item("1.3")
def test_loss_for_label_1(nb, given, tolerance):
    check_answer(nb, given, tolerance, bce(forward(*network(given)), given["y"]).item())


@pytest.mark.item("1.4")
def test_updated_w36(nb, given, tolerance):
    check_answer(nb, given, tolerance, updated_weight(given))


@pytest.mark.item("1.5")
def test_updated_w25(nb, given, tolerance):
    check_answer(nb, given, tolerance, updated_weight(given))
