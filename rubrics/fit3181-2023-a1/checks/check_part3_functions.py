"""Part 3's questions on functions the grader calls on its own inputs: mixup (3.7), the
attacks run on the grader's network (3.8) and one SAM step (3.10). The networks trained on
STL10 are check_part3.py's."""


import numpy as np
import pytest
import torch
from scipy import stats

from autograder.checking import CheckFailed, as_array, as_list
from autograder.checks import attacks

# 3.7: mixup

MIXUP_PROBE = '''
def _subject():
    return mixup


def _plain(value):
    import numpy as np
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return np.asarray(value, dtype=np.float64)


def probe(x, y, alpha, calls, seed):
    import random
    import numpy as np
    import torch
    function = _subject()
    state = random.getstate(), np.random.get_state()
    found = []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            for _ in range(calls):
                try:
                    out = function(torch.as_tensor(x), torch.as_tensor(y), alpha)
                except Exception:
                    out = function(np.array(x), np.array(y), alpha)
                if not isinstance(out, (tuple, list)) or len(out) < 2:
                    return {"not_pair": type(out).__name__}
                found.append([_plain(part) for part in (out if len(out) == 4 else out[:2])])
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    return found
'''


def _mixup_inputs(rng):
    x = rng.random((10, 3, 8, 8)).astype(np.float32)
    labels = rng.permutation(10)
    return x, np.eye(10, dtype=np.float32)[labels], labels


def _folded_beta_cdf(alpha):
    """CDF of min(λ, 1 - λ) for λ ~ Beta(alpha, alpha): a sample's own weight or its partner's."""
    return lambda t: np.clip(2 * stats.beta.cdf(np.minimum(t, 0.5), alpha, alpha), 0, 1)


def _mixed_labels(returned, count):
    """The mixed labels: returned as they are, or, in the mixup paper's form (mixed_x, y_a,
    y_b, lam) for a loss of two cross-entropies, rebuilt as lam * y_a + (1 - lam) * y_b (each
    one-hot, or class numbers of the grader's one-hot labels)."""
    if len(returned) != 4:
        return returned[1]
    pair = []
    for labels in returned[1:3]:
        labels = np.asarray(labels)
        pair.append(np.eye(10)[labels.astype(int)] if labels.ndim == 1 and labels.size == count else labels)
    lam = np.asarray(returned[3], dtype=np.float64)
    lam = lam.reshape(-1, 1) if lam.size == count else lam.reshape(())
    return lam * pair[0] + (1 - lam) * pair[1]


@pytest.mark.item("3.7a")
def test_mixup(nb, given):
    rng = np.random.default_rng(31810)
    x, y, labels = _mixup_inputs(rng)
    for alpha in given["mixup_alphas"]:
        found = nb.probe(MIXUP_PROBE, x, y, float(alpha), given["mixup_calls"], 3181, timeout=600)
        if isinstance(found, dict):
            raise CheckFailed("`mixup(x, y, alpha)` should return the mixed batch and labels (x, y), or the mixup "
                              f"paper's (x, y_a, y_b, lam); it returned a {found['not_pair']}")
        weights = []
        for returned in found:
            mixed_x = as_array(returned[0], "the mixed batch", shape=x.shape)
            mixed_y = as_array(_mixed_labels(returned, len(x)), "the mixed labels", shape=y.shape)
            call_weights = []
            for i in range(len(x)):
                own = mixed_y[i, labels[i]]
                others = [c for c in range(10) if c != labels[i] and abs(mixed_y[i, c]) > 1e-6]
                if len(others) > 1 or abs(mixed_y[i].sum() - 1) > 1e-4 or mixed_y[i].min() < -1e-6:
                    raise CheckFailed(f"the mixed label of sample {i} should mix its one-hot label with one partner's "
                                      f"by λ in [0, 1]; got {np.round(mixed_y[i], 4).tolist()}")
                partner = int(np.argmax(labels == others[0])) if others else i
                want = own * x[i] + (1 - own) * x[partner]
                if np.abs(mixed_x[i] - want).max() > 1e-4:
                    raise CheckFailed(f"sample {i}: its label is {own:.4f} of its own and {1 - own:.4f} of sample "
                                      f"{partner}'s, but its image is not that mix of the two images (off by up to "
                                      f"{np.abs(mixed_x[i] - want).max():.3g}): mix images and labels by the same λ")
                if partner != i:
                    call_weights.append(own)
            if call_weights:
                weights.append(call_weights[0])  # one λ per call: per-sample and per-batch λ both accepted
        if len(weights) < len(found) // 2:
            raise CheckFailed(f"`mixup` mixed samples with a partner in only {len(weights)} of {len(found)} calls")
        folded = np.minimum(weights, 1 - np.asarray(weights))
        p = stats.kstest(folded, _folded_beta_cdf(alpha)).pvalue
        if p < given["ks_p"]:
            expected = stats.beta.expect(lambda t: min(t, 1 - t), (alpha, alpha))
            raise CheckFailed(f"over {len(weights)} calls with alpha={alpha:g}, λ is not distributed as "
                              f"Beta({alpha:g}, {alpha:g}) (Kolmogorov-Smirnov p = {p:.2g}; the mean of min(λ, 1 - λ) "
                              f"is {folded.mean():.3f}, Beta's {expected:.3f})")


# 3.8: the attacks, on the grader's network


@pytest.mark.item("3.8a")
def test_fgsm(nb):
    attacks.expect_fgsm(nb, "fgsm_attack")


@pytest.mark.item("3.8b")
def test_pgd(nb):
    attacks.expect_iterative_attack(nb, "pgd_attack", "pgd")


@pytest.mark.item("3.8c")
def test_mim(nb):
    attacks.expect_iterative_attack(nb, "mim_attack", "mim", args=(*attacks.ITERATIVE_ARGS, "decay"))


# 3.10 (bonus): one SAM step

SAM_PROBE = '''
def _subject():
    return SAM


def probe(weights, x, y, rho, lr):
    import torch
    import torch.nn.functional as F
    optimizer_class = _subject()
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), weights):
            parameter.copy_(torch.as_tensor(value))
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    optimizer = optimizer_class(model.parameters(), torch.optim.SGD, rho=rho, lr=lr)
    F.cross_entropy(model(x), y).backward()
    optimizer.first_step(zero_grad=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.second_step(zero_grad=True)
    return [parameter.detach().numpy() for parameter in model.parameters()]
'''


def _sam_reference(weights, x, y, rho, lr):
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), weights):
            parameter.copy_(torch.as_tensor(value, dtype=torch.float64))
    xs, ys = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    params = list(model.parameters())
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xs), ys), params)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(rho * g / norm)
    again = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xs), ys), params)
    return [np.asarray(w, dtype=np.float64) - lr * g.numpy() for w, g in zip(weights, again)]


@pytest.mark.item("3.10a")
def test_sam_step(nb, given):
    rng = np.random.default_rng(31811)
    shapes = [(5, 6), (5,), (3, 5), (3,)]
    weights = [rng.normal(0, 0.8, shape).astype(np.float32) for shape in shapes]
    x = rng.normal(0, 1, (16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16).astype(np.int64)
    rho, lr = given["rho"], given["lr"]
    got = as_list(nb.probe(SAM_PROBE, weights, x, y, rho, lr), "the parameters after one SAM step")
    want = _sam_reference(weights, x, y, rho, lr)
    for index, (g, w, before) in enumerate(zip(got, want, weights)):
        g = as_array(g, "the parameters after one SAM step", shape=w.shape)
        off = float(np.abs(g - w).max())
        if off > 1e-5:
            moved = float(np.abs(g - before).max())
            raise CheckFailed(f"after one SAM step (rho={rho:g}, SGD lr={lr:g}) parameter {index} differs from "
                              f"w - lr * grad L(w + rho * g / ||g||) by up to {off:.3g} (it moved by up to "
                              f"{moved:.3g}): the gradient at the perturbed weights, the norm over all parameters, "
                              "the step taken from w")
