"""Question 6: VGG-11's table. The grader builds the network of the handout's table with
torch (on the meta device: shapes and parameter counts without 530 MB of weights) and
reads each layer's output size and parameter count from it."""

import pytest
import torch
from torch import nn

from autograder.checking import CheckFailed, as_dims, as_list, as_pair, expect_close, same_dims
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
    """The table's rows as (output dimension, parameters) pairs."""
    rows = as_list(nb.get("vgg11_table"), "vgg11_table (one row per layer)", len(given["layers"]))
    return [as_pair(row, f"row {number} of vgg11_table ({layer})")
            for number, (layer, row) in enumerate(zip(given["layers"], rows))]


@pytest.mark.item("6.1")
def test_output_dimensions(nb, given):
    """Written as the handout's table writes it (224x224x3), or channels first as PyTorch
    does (3x224x224); a flat layer's size as 4096, (4096,) or 1x1x4096."""
    for number, (layer, (dims, _), (shape, _)) in enumerate(zip(given["layers"], submitted(nb, given), table(given))):
        got = as_dims(dims, f"the output dimension of row {number} ({layer})")
        if not same_dims(got, shape, channels_first=True):
            raise CheckFailed(f"row {number} ({layer}): output dimension {got}, expected {shape}")


@pytest.mark.item("6.2")
def test_parameters_per_layer(nb, given):
    for number, (layer, (_, params), (_, want)) in enumerate(zip(given["layers"], submitted(nb, given), table(given))):
        expect_close(params, want, tol=EXACT, what=f"row {number} ({layer}): parameters with biases")


@pytest.mark.item("6.3")
def test_total(nb, given):
    expect_close(nb.get("vgg11_total_params"), sum(p for _, p in table(given)), tol=EXACT, what="vgg11_total_params")


@pytest.mark.item("6.4")
def test_fc_share(nb, given, tolerance):
    rows = table(given)
    fc = sum(p for layer, (_, p) in zip(given["layers"], rows) if layer.startswith("FC-"))
    expect_close(nb.get("vgg11_fc_percent"), 100 * fc / sum(p for _, p in rows), tol=tolerance,
                 what="vgg11_fc_percent")
