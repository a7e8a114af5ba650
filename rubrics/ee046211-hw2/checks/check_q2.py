"""Question 2: one forward pass, one backward pass and one SGD step of the 3-2-2 sigmoid
network, by hand. Expected values come from the weights the rubric declares, computed
here with torch autograd at check time."""

import pytest
import torch

from autograder.checking import as_dict, expect_allclose, expect_close

PARAMETERS = ("W1", "b1", "W2", "b2")


def network(given):
    params = {name: torch.tensor(given[name], dtype=torch.float64, requires_grad=True) for name in PARAMETERS}
    x = torch.tensor(given["x"], dtype=torch.float64)
    t = torch.tensor(given["t"], dtype=torch.float64)
    hidden = torch.sigmoid(params["W1"] @ x + params["b1"])
    output = torch.sigmoid(params["W2"] @ hidden + params["b2"])
    loss = torch.mean((output - t) ** 2)
    loss.backward()
    return loss, params


@pytest.mark.item("2.1")
def test_forward_mse(nb, given, tolerance):
    loss, _ = network(given)
    expect_close(nb.get("q2_mse"), loss.item(), tol=tolerance, what="q2_mse")


@pytest.mark.item("2.2")
def test_gradients(nb, given, tolerance):
    _, params = network(given)
    grads = as_dict(nb.get("q2_grads"), "q2_grads", PARAMETERS)
    for name in PARAMETERS:
        expect_allclose(grads[name], params[name].grad.numpy(), tol=tolerance, what=f"the gradient of {name}")


@pytest.mark.item("2.3")
def test_sgd_step(nb, given, tolerance):
    _, params = network(given)
    updated = as_dict(nb.get("q2_updated"), "q2_updated", PARAMETERS)
    for name in PARAMETERS:
        want = (params[name] - given["lr"] * params[name].grad).detach().numpy()
        expect_allclose(updated[name], want, tol=tolerance, what=f"{name} after one SGD step")
