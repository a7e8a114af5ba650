"""Task 2: the FashionMNIST MLP. Its test accuracy is measured here: the kernel reads the
test images of its data view through the student's test_transform and returns
predictions; the labels stay on the grader's side. The model must hold no convolution,
and `reinit` must change the initialization of a linear layer from PyTorch's default."""

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_vector
from autograder.data import fashionmnist

PREDICT_PROBE = '''
def probe(root, batch_size):
    import torch
    import torchvision
    images = torchvision.datasets.FashionMNIST(root, train=False, transform=test_transform)
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    predicted = []
    with torch.no_grad():
        loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False)
        for batch, _ in loader:
            predicted.append(model(batch.to(device)).argmax(dim=1).cpu())
    model.train(training)
    return torch.cat(predicted)
'''

LAYERS_PROBE = '''
def probe():
    return sorted({type(m).__module__ + "." + type(m).__name__ for m in model.modules()})
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
    after = (layer.weight.std().item(), layer.bias.std().item(), layer.bias.abs().mean().item())
    return {"default": default, "after": after, "changed": bool((layer.weight != before).any())}
'''


@pytest.mark.item("T2.1")
def test_test_accuracy(nb, data, given, measure):
    labels = fashionmnist.heldout(data.source)
    predicted = nb.probe(PREDICT_PROBE, str(data.view), 512, timeout=given["probe_timeout_s"])
    predicted = as_vector(predicted, "model's predicted classes", len(labels))
    measure(float(np.mean(predicted == labels)), note=f"{len(labels)} test images")


@pytest.mark.item("T2.2")
def test_an_mlp(nb):
    layers = nb.probe(LAYERS_PROBE)
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
