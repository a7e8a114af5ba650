"""Task 1: 100 layers of 512. The grader runs each experiment itself (``experiments.py``),
with seeds of its own, and accepts a student's statistic within the spread of its runs;
the two init functions are called with shapes of the grader's and tested as distributions,
each item charging only what its title says (the function, not a statistic of the
template's). Conventions the handout leaves open are accepted both ways, each with the
handout's words beside it:

- the init functions' orientation: the handout's loop is ``x = a @ x``, so ``a`` is
  (fan_out, fan_in), PyTorch's own convention (``nn.init`` reads fan_in from a tensor's
  second dimension), while the names read (fan_in, fan_out): either shape is right, and a
  tensor PyTorch's ``kaiming_normal_`` filled has its std from its second dimension;
- Task 1.4, "add a tanh() after each layer for the code from 1": the code of Task 1.1
  (unit-normal weights, as the sentence literally says) or of Task 1.3 (the normalised
  ones): the statistic is accepted within the grader's runs of either."""

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array, as_number, expect_close


def within_runs(nb, given, experiments, name, init, activation, *, also=()):
    """``name`` within the spread of the grader's runs of the experiment (``init`` weights,
    ``activation`` after each layer), or of one of ``also``'s inits, another reading."""
    value = as_number(nb.get(name), name)
    ranges = []
    for each in (init, *also):
        spread = given["spread"].get(f"{activation}_{each}") or given["spread"][init if activation == "none"
                                                                                else activation]
        runs = experiments.final_stds(each, activation, given["layers"], given["units"], given["runs"])
        low, high = min(runs) / spread, max(runs) * spread
        if low <= value <= high:
            return
        ranges.append(f"{min(runs):.4g} to {max(runs):.4g} with {each} weights (accepted: {low:.4g} to {high:.4g})")
    raise CheckFailed(f"{name} = {value:.4g}; the grader's runs of this experiment end with a std of "
                      + ", or ".join(ranges))


@pytest.fixture
def experiments(assignment):
    return assignment.module("experiments")


@pytest.mark.item("T1.1")
def test_nan_layer(nb, given, experiments):
    first_inf, first_nan = experiments.overflow(given["layers"], given["units"])
    got = as_number(nb.get("t1_nan_layer"), "t1_nan_layer")
    if not first_inf <= got <= first_nan + 1:  # counted from 0 or from 1, at the overflow or the NaN
        raise CheckFailed(f"t1_nan_layer = {got:g}; the values overflow at layer {first_inf} and are NaN at layer "
                          f"{first_nan} (counting from 0)")


@pytest.mark.item("T1.2")
def test_empirical_std(nb, given, tolerance):
    expect_close(nb.get("t1_std"), float(np.sqrt(given["units"])), tol=tolerance, what="t1_std (about sqrt(512))")
    mean = as_number(nb.get("t1_mean"), "t1_mean")
    if abs(mean) > 0.2:
        raise CheckFailed(f"t1_mean = {mean:.4g}: the mean of y = ax over 10,000 products is close to 0")


@pytest.mark.item("T1.3")
def test_normalised_init(nb, given, experiments):
    within_runs(nb, given, experiments, "t1_normalised_std", "normalised", "none")


@pytest.mark.item("T1.4")
def test_tanh(nb, given, experiments):
    within_runs(nb, given, experiments, "t1_tanh_std", "normalised", "tanh", also=("normal",))


def sample(nb, name, fan_in, fan_out):
    """``name(fan_in, fan_out)``: a tensor of (fan_in, fan_out), as the names read, or of
    (fan_out, fan_in), as ``a`` in the handout's ``x = a @ x`` and PyTorch's layers are."""
    got = nb.call(name, fan_in, fan_out)
    shown = f"{name}({fan_in}, {fan_out})"
    try:
        shape = np.shape(got)
    except ValueError:  # ragged: as_array says what is wrong with it
        shape = None
    if shape == (fan_out, fan_in) and fan_in != fan_out:
        return as_array(got, shown, shape=(fan_out, fan_in)).astype(np.float64)
    return as_array(got, shown, shape=(fan_in, fan_out)).astype(np.float64)


@pytest.mark.item("T1.5")
def test_xavier(nb, given, experiments):
    for fan_in, fan_out in ((300, 500), (512, 512)):
        values = sample(nb, "xavier_init", fan_in, fan_out)
        bound = np.sqrt(6 / (fan_in + fan_out))
        if np.abs(values).max() > bound * (1 + 1e-6) or np.abs(values).max() < bound * 0.98:
            raise CheckFailed(f"xavier_init({fan_in}, {fan_out}): values reach {np.abs(values).max():.4g}; a uniform "
                              f"distribution on ±sqrt(6 / (fan_in + fan_out)) = ±{bound:.4g} reaches its bound")
        if abs(values.std() / (bound / np.sqrt(3)) - 1) > 0.03 or abs(values.mean()) > bound * 0.02:
            raise CheckFailed(f"xavier_init({fan_in}, {fan_out}): std {values.std():.4g}, expected "
                              f"{bound / np.sqrt(3):.4g} for a uniform distribution on ±{bound:.4g}")


@pytest.mark.item("T1.6")
def test_kaiming(nb, given, experiments):
    for fan_in, fan_out in ((400, 300), (512, 512)):
        values = sample(nb, "kaiming_init", fan_in, fan_out)
        std = np.sqrt(2 / fan_in)
        # a (fan_in, fan_out) tensor PyTorch's kaiming_normal_ filled reads its fan-in from its second dimension
        stds = {std, np.sqrt(2 / values.shape[1])}
        if all(abs(values.std() / each - 1) > 0.03 for each in stds) or abs(values.mean()) > std * 0.02:
            raise CheckFailed(f"kaiming_init({fan_in}, {fan_out}): std {values.std():.4g}, expected sqrt(2 / fan_in) "
                              f"= {std:.4g} (fan-in mode)")
        kurtosis = np.mean((values - values.mean()) ** 4) / values.var() ** 2
        if abs(kurtosis - 3) > 0.3:
            raise CheckFailed(f"kaiming_init({fan_in}, {fan_out}): kurtosis {kurtosis:.3g}; a normal distribution "
                              "has 3 (a uniform one 1.8)")
