"""Question 2: the activation z of Equation (1) and its n-fold composition, probed on a grid."""

import numpy as np
import pytest

from autograder.checking import expect_allclose, expect_close

GRID = np.linspace(-3.0, 3.0, 121)  # includes -1, 0 and 1, where the pieces meet
SATURATED = np.e - 1.0 / np.e


def z(x):
    """Equation (1), piece by piece as the handout writes it."""
    return np.where(x > 1, SATURATED, np.where(x < -1, -SATURATED, np.exp(x) - np.exp(-x)))


def z_n(x, n):
    for _ in range(n):
        x = z(x)
    return x


@pytest.mark.item("2a")
def test_z(nb, tolerance):
    expect_allclose(nb.call("z", GRID), z(GRID), tol=tolerance, what="z(x) on x in [-3, 3]")


@pytest.mark.item("2b")
def test_z_n(nb, tolerance):
    for n in (1, 2, 5, 1000):
        expect_allclose(nb.call("z_n", GRID, n), z_n(GRID, n), tol=tolerance, what=f"z_n(x, {n})")


@pytest.mark.item("2c")
def test_limits(nb, given, tolerance):
    for name, x in given["answers"].items():
        expect_close(nb.get(name), float(z_n(np.array(x), 1000)), tol=tolerance, what=f"{name} (z_1000({x:g}))")
