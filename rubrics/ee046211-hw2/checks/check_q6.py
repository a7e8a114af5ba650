"""Question 6: VGG-11's table. The grader builds the network of the handout's table with
torch (on the meta device: shapes and parameter counts without 530 MB of weights) and
reads each layer's output size and parameter count from it."""

import pytest
import torch
from torch import nn

from autograder.checking import CheckFailed, as_array, expect_close
from autograder.course.rubric import Tolerance

EXACT = Tolerance()  # counts are whole numbers: no slack


def build(layers, channels):
    """The modules of the table, one per row after INPUT; None for rows without a module."""
    modules, previous, flat = [], channels, None
    for layer in layers[1:]:
        if layer.startswith("CONV3-"):
            out = int(layer.split("-")[1])
            modules.append(nn.Conv2d(previous, out, 3, stride=1, padding=1, device="meta"))
            previous = out
        elif layer == "ReLU":
            modules.append(nn.ReLU())
        elif layer == "POOL2":
            modules.append(nn.MaxPool2d(2, stride=2))
        elif layer.startswith("FC-"):
            out = int(layer.split("-")[1])
            modules.append(nn.Sequential(nn.Flatten(), nn.LazyLinear(out, device="meta")) if flat is None
                           else nn.Linear(flat, out, device="meta"))
            flat = out
        elif layer == "SOFTMAX":
            modules.append(nn.Softmax(dim=1))
        else:
            raise ValueError(f"unknown layer {layer}")
    return modules


def table(given):
    """[(output dimension, parameters)] per row, the grader's own."""
    height, width, channels = given["input"]
    rows = [((height, width, channels), 0)]
    tensor = torch.empty(1, channels, height, width, device="meta")
    for module in build(given["layers"], channels):
        tensor = module(tensor)
        shape = tuple(tensor.shape[1:])
        shape = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape  # channels last, as the table writes
        rows.append((tuple(int(s) for s in shape), sum(p.numel() for p in module.parameters())))
    return rows


def submitted(nb, given):
    rows = nb.get("vgg11_table")
    if not isinstance(rows, list) or len(rows) != len(given["layers"]):
        raise CheckFailed(f"vgg11_table should have one row per layer ({len(given['layers'])}), got {rows!r:.80}")
    return rows


@pytest.mark.item("6.1")
def test_output_dimensions(nb, given):
    for layer, row, (shape, _) in zip(given["layers"], submitted(nb, given), table(given)):
        got = tuple(int(v) for v in as_array(row[0], f"the output dimension of {layer}"))
        if got != shape:
            raise CheckFailed(f"{layer}: output dimension {got}, expected {shape}")


@pytest.mark.item("6.2")
def test_parameters_per_layer(nb, given):
    for number, (layer, row, (_, params)) in enumerate(zip(given["layers"], submitted(nb, given), table(given))):
        expect_close(row[1], params, tol=EXACT, what=f"row {number} ({layer}): parameters with biases")


@pytest.mark.item("6.3")
def test_total(nb, given):
    expect_close(nb.get("vgg11_total_params"), sum(p for _, p in table(given)), tol=EXACT, what="vgg11_total_params")


@pytest.mark.item("6.4")
def test_fc_share(nb, given, tolerance):
    rows = table(given)
    fc = sum(p for layer, (_, p) in zip(given["layers"], rows) if layer.startswith("FC-"))
    expect_close(nb.get("vgg11_fc_percent"), 100 * fc / sum(p for _, p in rows), tol=tolerance,
                 what="vgg11_fc_percent")
