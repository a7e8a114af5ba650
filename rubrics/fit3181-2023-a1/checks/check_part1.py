"""Part 1: ELU and its derivative on a grid, the feed-forward numbers of 1.2 and the
back-propagation of 1.3, against values computed here with torch autograd from the values
the rubric declares (the handout's figures) and from parameters the grader draws. The
student's own random instance of 1.3 is checked against autograd on the student's own
parameters, read from the kernel."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checking import CheckFailed, as_array, as_dict, as_number, describe_value, expect_allclose
from autograder.checks.inputs import call_elementwise
from autograder.course.rubric import Tolerance
from autograder.errors import StudentRaised

GRADS = ("dl_dh2", "dl_dW2", "dl_db2", "dl_dh1", "dl_dh1_bar", "dl_dW1", "dl_db1")
PARAMS = ("W1", "b1", "W2", "b2")


def _t(values):
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float64)


# 1.1 ELU


@pytest.mark.item("1.1a")
def test_elu(nb, given, tolerance):
    """On the grader's grid, or value by value for functions written for one number."""
    grid = np.concatenate([np.linspace(-5, -0.01, 40), np.linspace(0.01, 5, 40)])
    for alpha in given["alphas"]:
        x = _t(grid).requires_grad_(True)
        want = F.elu(x, alpha)
        (slope,) = torch.autograd.grad(want.sum(), x)
        expect_allclose(call_elementwise(nb, "elu", grid, alpha), want.detach().numpy(), tol=tolerance,
                        what=f"elu(x, alpha={alpha}) on x from -5 to 5")
        expect_allclose(call_elementwise(nb, "elu_derivative", grid, alpha), slope.numpy(), tol=tolerance,
                        what=f"elu_derivative(x, alpha={alpha}) on x from -5 to 5")


# 1.2 the feed-forward network of the figure


def feed_forward(given):
    x = _t(given["x"]).reshape(1, -1)
    h1 = torch.relu(x @ _t(given["W1"]) + _t(given["b1"]))
    h2 = torch.relu(h1 @ _t(given["W2"]) + _t(given["b2"]))
    logits = h2 @ _t(given["W3"]) + _t(given["b3"])
    target = torch.tensor([given["y"] - 1])
    return {
        "q12_h1": h1[0], "q12_h2": h2[0], "q12_h3": logits[0], "q12_p": torch.softmax(logits, 1)[0],
        "q12_ce_loss": F.cross_entropy(logits, target),
        "q12_ls_loss": F.cross_entropy(logits, target, label_smoothing=given["alpha"]),
        "q12_predicted_class": int(logits.argmax()) + 1,
    }


def _expect_value(nb, name, want, tolerance):
    want = np.asarray(want.detach().numpy() if isinstance(want, torch.Tensor) else want, dtype=float)
    expect_allclose(nb.get(name), want, tol=tolerance, what=f"`{name}`")


@pytest.mark.parametrize("name", [
    pytest.param("q12_h1", marks=pytest.mark.item("1.2a"), id="h1"),
    pytest.param("q12_h2", marks=pytest.mark.item("1.2b"), id="h2"),
    pytest.param("q12_h3", marks=pytest.mark.item("1.2c"), id="logits"),
    pytest.param("q12_p", marks=pytest.mark.item("1.2d"), id="probabilities"),
])
def test_feed_forward_value(nb, given, tolerance, name):
    _expect_value(nb, name, feed_forward(given)[name], tolerance)


@pytest.mark.item("1.2e")
def test_prediction(nb, given):
    want = feed_forward(given)["q12_predicted_class"]
    got = nb.get("q12_predicted_class")
    number = as_number(got, "`q12_predicted_class`")
    if number != want:
        hint = " (classes are numbered from 1, as in the lecture)" if number == want - 1 else ""
        raise CheckFailed(f"`q12_predicted_class` should be {want}, got {number:g}{hint}")
    correct = nb.get("q12_correct")
    if not isinstance(correct, (bool, np.bool_)) and correct not in (0, 1):
        raise CheckFailed(f"`q12_correct` should be True or False, got {describe_value(correct)}")
    if bool(correct) != (want == given["y"]):
        raise CheckFailed(f"`q12_correct` should be {want == given['y']}: class {want} is predicted, "
                          f"the true class is {given['y']}")


@pytest.mark.item("1.2f")
def test_cross_entropy(nb, given, tolerance):
    _expect_value(nb, "q12_ce_loss", feed_forward(given)["q12_ce_loss"], tolerance)


@pytest.mark.item("1.2g")
def test_label_smoothed_loss(nb, given, tolerance):
    _expect_value(nb, "q12_ls_loss", feed_forward(given)["q12_ls_loss"], tolerance)


# 1.3 back-propagation


def draws(given):
    """The grader's random parameter sets of the declared shapes (3 -> hidden -> 3)."""
    hidden = given["hidden"]
    sets = []
    for seed in given["seeds"]:
        rng = np.random.default_rng(seed)
        sets.append({"W1": rng.normal(size=(3, hidden)), "b1": rng.normal(size=hidden),
                     "W2": rng.normal(size=(hidden, 3)), "b2": rng.normal(size=3)})
    return sets


def autograd(x, y, params):
    """The loss, every derivative of 1.3 and the parameters after one SGD step, by autograd."""
    leaves = {name: _t(value).requires_grad_(True) for name, value in params.items()}
    h1_bar = _t(x).reshape(1, -1) @ leaves["W1"] + leaves["b1"]
    h1_bar.retain_grad()
    h1 = torch.relu(h1_bar)
    h1.retain_grad()
    h2 = h1 @ leaves["W2"] + leaves["b2"]
    h2.retain_grad()
    loss = F.cross_entropy(h2, torch.tensor([y - 1]))
    loss.backward()
    found = {"loss": loss.item(), "dl_dh2": h2.grad[0], "dl_dh1": h1.grad[0], "dl_dh1_bar": h1_bar.grad[0],
             **{f"dl_d{name}": leaf.grad for name, leaf in leaves.items()}}
    return {key: np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
            for key, value in found.items()}


def _expect_grads(got, want, names, tolerance, what):
    got = as_dict(got, what, names)
    for name in names:
        # W's shape is (fan-in, fan-out) here; the other layout (fan-out, fan-in) is a
        # correct answer in the column-vector convention, and non-square, so unambiguous.
        expect_allclose(got[name], want[name], tol=tolerance, what=f"{what}[{name!r}]",
                        transposed=name.startswith("dl_dW"))


def _grader_calls(nb, given, names, tolerance):
    for number, params in enumerate(draws(given), start=1):
        want = autograd(given["x"], given["y"], params)
        x = np.asarray(given["x"], dtype=float)
        got = _forward_backward(nb, x, given["y"], params)
        what = f"forward_backward(x, y, W1, b1, W2, b2) on the grader's parameter set {number}"
        if names == ("loss",):
            got = as_dict(got, what, names)
            expect_allclose(got["loss"], want["loss"], tol=tolerance, what=f"{what}['loss']")
        else:
            _expect_grads(got, want, names, tolerance, what)


def _columns(params):
    """The parameters in the other layout: each W as (fan-out, fan-in), for h = W x."""
    return {name: np.asarray(value).T if name.startswith("W") else value for name, value in params.items()}


def _forward_backward(nb, x, y, params):
    """forward_backward on ``params`` laid out as the grader's (W as fan-in x fan-out, h = x W),
    or, where the student's function raises on that, in the column convention (h = W x): the
    handout's lost figure allows both."""
    try:
        return nb.call("forward_backward", x, y, *(params[p] for p in PARAMS))
    except StudentRaised as raised:
        try:
            return nb.call("forward_backward", x, y, *(_columns(params)[p] for p in PARAMS))
        except StudentRaised:
            raise raised from None


def _own(nb, given):
    """The student's own q13_params in the grader's layout, and whether they were in the
    column convention (W1 hidden x 3, W2 3 x hidden): both are correct readings."""
    params = as_dict(nb.get("q13_params"), "`q13_params`", PARAMS)
    own = {name: as_array(params[name], f"`q13_params[{name!r}]`").astype(float) for name in PARAMS}
    hidden = given["hidden"]
    if own["W1"].shape == (hidden, 3) and own["W2"].shape == (3, hidden) and hidden != 3:
        return _columns(own), True
    if own["W1"].shape != (3, hidden) or own["W2"].shape != (hidden, 3):
        raise CheckFailed(f"`q13_params` should hold W1 of 3 x {hidden} and W2 of {hidden} x 3 (or the other way "
                          f"round); they are {own['W1'].shape} and {own['W2'].shape}")
    return own, False


@pytest.mark.item("1.3a")
def test_loss(nb, given, tolerance):
    _grader_calls(nb, given, ("loss",), tolerance)
    own, _ = _own(nb, given)
    want = autograd(given["x"], given["y"], own)["loss"]
    expect_allclose(nb.get("q13_loss"), want, tol=tolerance,
                    what="`q13_loss` (the grader's autograd on your own `q13_params`)")


@pytest.mark.item("1.3b")
def test_output_layer_gradients(nb, given, tolerance):
    _grader_calls(nb, given, GRADS[:3], tolerance)


@pytest.mark.item("1.3c")
def test_hidden_layer_gradients(nb, given, tolerance):
    _grader_calls(nb, given, GRADS[3:], tolerance)


@pytest.mark.item("1.3d")
def test_sgd_update(nb, given, tolerance):
    lr = given["lr"]
    exact = Tolerance(abs=1e-12, rel=1e-9, why="a subtraction in float64")
    for number, params in enumerate(draws(given), start=1):
        grads = {f"dl_d{name}": np.random.default_rng(number).normal(size=np.shape(value))
                 for name, value in params.items()}
        got = as_dict(nb.call("sgd_update", params, grads, lr), "sgd_update(params, grads, lr)", PARAMS)
        for name in PARAMS:
            expect_allclose(got[name], params[name] - lr * grads[f"dl_d{name}"], tol=exact,
                            what=f"sgd_update(...)[{name!r}] on the grader's set {number} (W - lr * grad)")
    own, columns = _own(nb, given)
    want = autograd(given["x"], given["y"], own)
    stepped = {name: own[name] - lr * want[f"dl_d{name}"] for name in PARAMS}
    stepped = _columns(stepped) if columns else stepped  # in the layout the student keeps
    updated = as_dict(nb.get("q13_updated"), "`q13_updated`", PARAMS)
    for name in PARAMS:
        expect_allclose(updated[name], stepped[name], tol=tolerance,
                        what=f"`q13_updated[{name!r}]` (your `q13_params` after one SGD step with lr {lr})")
