"""Task 1's experiments, run by the grader with seeds of its own. Loaded once per grading
process (``assignment.module("experiments")``), so a batch runs each experiment once."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

INITS = {
    "normal": lambda n, g: torch.randn(n, n, generator=g),
    "normalised": lambda n, g: torch.randn(n, n, generator=g) / np.sqrt(n),
    "xavier": lambda n, g: (torch.rand(n, n, generator=g) * 2 - 1) * np.sqrt(6 / (2 * n)),
    "kaiming": lambda n, g: torch.randn(n, n, generator=g) * np.sqrt(2 / n),
}
ACTIVATIONS = {"none": lambda x: x, "tanh": torch.tanh, "relu": torch.relu}
SEED = 10_007


@cache
def final_stds(init: str, activation: str, layers: int, units: int, runs: int) -> tuple[float, ...]:
    """The std of the last layer's values in each of ``runs`` runs of the experiment."""
    values = []
    for run in range(runs):
        g = torch.Generator().manual_seed(SEED + run)
        x = torch.randn(units, generator=g)
        for _ in range(layers):
            x = ACTIVATIONS[activation](INITS[init](units, g) @ x)
        values.append(x.std().item())
    return tuple(values)


@cache
def overflow(layers: int, units: int) -> tuple[int, int]:
    """(first layer with an infinite value, first with a NaN), counting from 0, for unit-normal weights."""
    g = torch.Generator().manual_seed(SEED)
    x, first_inf = torch.randn(units, generator=g), -1
    for layer in range(layers):
        x = INITS["normal"](units, g) @ x
        if first_inf < 0 and torch.isinf(x).any():
            first_inf = layer
        if torch.isnan(x).any():
            return first_inf, layer
    raise AssertionError("unit-normal weights should overflow within the layers")
