"""Question 3: weighted linear regression (Task 1.1) and logistic regression with
non-linear features and learning-rate decay (Task 1.2).

Functions are called with the grader's own random inputs and compared with the
grader's computation (torch autograd for the loss gradient). The trained models are
evaluated on held-out data generated here; its labels never reach the kernel.
"""

import numpy as np
import pytest
import torch

from autograder.checking import (
    CheckFailed,
    as_array,
    as_pair,
    as_vector,
    describe_value,
    expect_allclose,
    expect_close,
    version_for,
)
from autograder.errors import StudentRaised

RNG_SEED = 41_792


def reference_wls(X, Y, alpha):
    return np.linalg.solve((X.T * alpha) @ X, (X.T * alpha) @ Y)


def cubic(x):
    return np.stack([x**k for k in range(4)], axis=1)


def reference_heldout_mse(data):
    """The handout's method with cubic features: what a correct solution reaches."""
    public = data.regression()
    X, X_val = cubic(public["x_trn"]), cubic(public["x_val"])
    alpha, best, best_error = np.ones(len(X)), None, np.inf
    for _ in range(10):
        w = reference_wls(X, public["y_trn_noisy"], alpha)
        error = np.mean((X_val @ w - public["y_val"]) ** 2)
        if error < best_error:
            best, best_error = w, error
        alpha = np.exp(-0.5 * (public["y_trn_noisy"] - X @ w) ** 2)
    x, y = data.regression_heldout()
    return float(np.mean((cubic(x) @ best - y) ** 2))


@pytest.mark.item("3.1a")
def test_weighted_least_squares(nb, tolerance):
    rng = np.random.default_rng(RNG_SEED)
    for m, n in ((40, 3), (60, 5)):
        X = rng.normal(size=(m, n))
        Y = X @ rng.normal(size=n) + rng.normal(size=m)
        alpha = rng.uniform(0.05, 1.0, m)
        got = as_vector(nb.call("weighted_least_squares", X, Y, alpha), f"weighted_least_squares on {m}x{n} data", n)
        expect_allclose(got, reference_wls(X, Y, alpha), tol=tolerance, what=f"w* on random {m}x{n} data")


@pytest.mark.item("3.1b")
def test_sample_weights(nb, tolerance):
    rng = np.random.default_rng(RNG_SEED + 1)
    y_noisy, y_hat = rng.normal(0, 2, 50), rng.normal(0, 2, 50)
    for sigma in (0.1, 0.7, 2.0):
        got = as_vector(nb.call("sample_weights", y_noisy, y_hat, sigma), "sample_weights", 50)
        want = np.exp(-sigma * (y_noisy - y_hat) ** 2)
        expect_allclose(got, want, tol=tolerance, what=f"sample_weights with sigma={sigma}")


@pytest.mark.item("3.1c")
def test_heldout_error(nb, assignment, measure):
    """w_best is paired with the features it was fitted on: a cell after it that redefines
    features (an exploration) does not change which features those are."""
    data = assignment.module("datagen")
    x, y = data.regression_heldout()
    version, note = version_for(nb, "features", "w_best")
    design = nb.call_as_defined("features", version, x) if version else nb.call("features", x)
    design = as_array(design, "features(x)")
    if design.ndim != 2 or design.shape[0] != len(x):
        raise CheckFailed(f"features(x) should have one row per input ({len(x)}), got {describe_value(design)}")
    w = as_array(nb.get("w_best"), "w_best")
    if w.size != design.shape[1]:
        said = f"; {note}" if note else ""
        raise CheckFailed(f"w_best has {w.size} weights but features(x) gives {design.shape[1]} columns{said}")
    w = as_vector(w, "w_best", design.shape[1])
    mse = float(np.mean((design @ w - y) ** 2))
    measure(mse, reference=reference_heldout_mse(data), note=note)


@pytest.mark.item("3.2a")
def test_sigmoid(nb, tolerance):
    z = np.linspace(-30, 30, 241)
    expect_allclose(nb.call("sigmoid", z), 1.0 / (1.0 + np.exp(-z)), tol=tolerance, what="sigmoid(z)")


def loss_and_grad_cases():
    rng = np.random.default_rng(RNG_SEED + 2)
    for m, n in ((64, 6), (30, 3)):
        X = rng.normal(size=(m, n))
        y = (rng.random(m) < 0.5).astype(float)
        w = rng.normal(0, 0.5, n)
        tw = torch.tensor(w, requires_grad=True)
        p = torch.sigmoid(torch.tensor(X) @ tw)
        loss = torch.nn.functional.binary_cross_entropy(p, torch.tensor(y))
        loss.backward()
        yield X, y, w, loss.item(), tw.grad.numpy()


def either_convention(nb, X, y, w, expect):
    """``expect(loss, gradient)`` holds for ``compute_loss_and_grad(X, y, w)`` as this year's
    starter has it, or, where that raises or fails, for ``(X, y, y_hat)`` with ``y_hat =
    sigmoid(X @ w)`` as another year's starter has it. The cases' weights and samples differ
    in length, so a function of one convention cannot pass for the other by accident, and the
    first failure is the one reported."""
    try:
        expect(*as_pair(nb.call("compute_loss_and_grad", X, y, w), "compute_loss_and_grad"))
    except (CheckFailed, StudentRaised) as first:
        try:
            y_hat = 1.0 / (1.0 + np.exp(-X @ w))
            expect(*as_pair(nb.call("compute_loss_and_grad", X, y, y_hat), "compute_loss_and_grad"))
        except (CheckFailed, StudentRaised):
            raise first from None


@pytest.mark.item("3.2b")
def test_loss(nb, tolerance):
    for X, y, w, loss, _ in loss_and_grad_cases():
        what = f"the loss on random {X.shape[0]}x{X.shape[1]} data"
        either_convention(nb, X, y, w, lambda got, _, want=loss, what=what: expect_close(
            got, want, tol=tolerance, what=what))


@pytest.mark.item("3.2c")
def test_gradient(nb, tolerance):
    for X, y, w, _, grad in loss_and_grad_cases():
        what = f"the gradient on random {X.shape[0]}x{X.shape[1]} data"
        either_convention(nb, X, y, w, lambda _, got, want=grad, what=what: expect_allclose(
            as_vector(got, "the gradient", len(want)), want, tol=tolerance, what=what))


def labels_of(got):
    """Labels from what a predict function returns: labels 0 or 1 (the template's), or the
    probabilities sigmoid(X @ w) (the course's starter's predict(X, w)), thresholded at 0.5."""
    return got if np.isin(got, (0, 1)).all() else (got >= 0.5).astype(int)


@pytest.mark.item("3.2d")
def test_predict(nb):
    """Labels, or (as the course's starter has it) the probabilities they threshold."""
    rng = np.random.default_rng(RNG_SEED + 3)
    X, w = rng.normal(size=(200, 6)), rng.normal(size=6)
    probabilities = 1.0 / (1.0 + np.exp(-(X @ w)))
    want = (probabilities >= 0.5).astype(int)
    got = as_vector(nb.call("predict", X, w), "predict(X, w)", len(want))
    if not np.isin(got, (0, 1)).all() and not np.allclose(got, probabilities, atol=1e-6):
        raise CheckFailed("predict(X, w) should give labels 0 or 1, or the probabilities sigmoid(X @ w); it gives "
                          "neither")
    wrong = int(np.sum(labels_of(got) != want))
    if wrong:
        raise CheckFailed(f"predict(X, w) gave the wrong label for {wrong} of {len(want)} random points")


@pytest.mark.item("3.2e")
def test_decay(nb, given, tolerance):
    for lr in (1.0, 0.5, 0.0123, 3.0):
        want = (1.0 - given["alpha"]) * lr
        expect_close(nb.call("decay_lr", lr), want, tol=tolerance, what=f"decay_lr({lr})")


ACCURACY_PROBE = """
def probe(points):
    return predict(features_2d(points), w_logistic)
"""


@pytest.mark.item("3.2f")
def test_heldout_accuracy(nb, assignment, measure):
    points, labels = assignment.module("datagen").classification_heldout()
    predicted = as_vector(nb.probe(ACCURACY_PROBE, points), "predict(features_2d(X), w_logistic)", len(labels))
    if not np.isin(predicted, (0, 1)).all() and not ((predicted >= 0) & (predicted <= 1)).all():
        raise CheckFailed("predict should return labels 0 or 1, or probabilities")
    measure(float(np.mean(labels_of(predicted) == labels)))
