"""Task 2: the FashionMNIST MLP. Its test accuracy is measured here, on the grader's copy of
the test images, fed to the network the way it does best on the training images (divided
by 255 or not, centred, standardised, flat or as 1 x 28 x 28 pictures: ``checks.inputs``),
since students prepare them in all these ways; the labels stay on the grader's side. The
model must hold no convolution, and `reinit` must change the initialization of a linear
layer from PyTorch's default, whether it takes a model or, for ``model.apply``, one module."""

import numpy as np
import pytest

from autograder.checking import CheckFailed
from autograder.checks.inputs import choose_way, class_scores_as, image_ways
from autograder.checks.training import accuracy
from autograder.data import fashionmnist

LAYERS_PROBE = '''
def _subject():
    return model


def probe():
    import torch
    if not isinstance(_subject(), torch.nn.Module):
        return None
    return sorted({type(m).__module__ + "." + type(m).__name__ for m in _subject().modules()})
'''

INIT_PROBE = '''
def probe(fan_in, fan_out, seed):
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    layer = nn.Linear(fan_in, fan_out)
    default = (layer.weight.std().item(), layer.bias.std().item(), layer.bias.abs().mean().item())
    before = layer.weight.detach().clone()
    reinit(nn.Sequential(layer))
    if not bool((layer.weight != before).any()):  # written for model.apply(reinit): one module at a time
        nn.Sequential(layer).apply(reinit)
    after = (layer.weight.std().item(), layer.bias.std().item(), layer.bias.abs().mean().item())
    return {"default": default, "after": after, "changed": bool((layer.weight != before).any())}
'''


def _split(source, split):
    raw = fashionmnist.raw_dir(source)
    return tuple(fashionmnist.read_idx(raw / fashionmnist.FILES[(split, part)]) for part in ("images", "labels"))


@pytest.mark.item("T2.1")
def test_test_accuracy(nb, data, given, measure):
    images, labels = _split(data.source, "train")
    scaled = images.astype(np.float64) / 255.0
    ways = image_ways((1, 28, 28), mean=float(scaled.mean()), std=float(scaled.std()))
    way = choose_way(nb, "model", images.reshape(len(images), -1), labels, ways, what="training", classes=10)
    test = _split(data.source, "test")[0]
    truth = fashionmnist.heldout(data.source)
    scores = class_scores_as(nb, "model", test.reshape(len(test), -1), way, what="the test images", classes=10,
                             timeout=given["probe_timeout_s"])
    measure(accuracy(scores, truth), note=f"{len(truth)} test images fed {way.words}")


@pytest.mark.item("T2.2")
def test_an_mlp(nb):
    layers = nb.probe(LAYERS_PROBE)
    if layers is None:
        raise CheckFailed("model should be a torch.nn.Module")
    convolutions = [name for name in layers if "Conv" in name.rsplit(".", 1)[-1]]
    if convolutions:
        raise CheckFailed(f"model is not an MLP: it holds {', '.join(convolutions)}")
    if sum(name.endswith(".Linear") for name in layers) == 0:
        raise CheckFailed("model holds no linear layer")


@pytest.mark.item("T2.3")
def test_the_init_changes(nb):
    result = nb.probe(INIT_PROBE, 784, 256, 7)
    if not isinstance(result, dict) or not result.get("changed"):
        raise CheckFailed("reinit left a linear layer's weights as PyTorch initialized them")
    (w0, b0, m0), (w1, b1, m1) = result["default"], result["after"]
    same_weights = abs(w1 / w0 - 1) < 0.1
    same_bias = abs(b1 - b0) < 0.1 * b0 and abs(m1 - m0) < 0.1 * m0
    if same_weights and same_bias:
        raise CheckFailed(f"reinit draws from PyTorch's default distribution again (weight std {w1:.4g}, default "
                          f"{w0:.4g}): choose another initialization")
