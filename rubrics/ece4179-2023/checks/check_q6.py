"""Question 6: occlusion sensitivity. The student's function runs on a small network and
image of the grader's, for several patch sizes and strides; the heatmaps must match the
grader's own computation (patch zeroed, softmax score of the unoccluded top class)."""

import numpy as np
import pytest
import torch

from autograder.checking import expect_allclose

NETWORK = '''
import torch

def make():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(), torch.nn.Linear(64, 6),
    )

def build(weights):
    net = make()
    net.load_state_dict({name: torch.tensor(value) for name, value in weights.items()})
    return net.eval()
'''

PROBE = NETWORK + '''
def probe(image, weights, settings):
    net = build(weights)
    return [occlusion_sensitivity(net, torch.tensor(image), int(p), int(s)) for p, s in settings]
'''

SETTINGS = [(4, 2), (5, 3), (6, 6), (3, 1), (8, 5)]


def network():
    """The grader's copy of the small network the probe builds in the kernel."""
    scope: dict = {}
    exec(NETWORK, scope)  # the grader's own code, shared with the probe
    torch.manual_seed(61)
    return scope["make"]().eval()


def reference(net, image, patch, stride):
    _, height, width = image.shape
    with torch.no_grad():
        top = int(net(image[None]).argmax())
        rows = range(0, height - patch + 1, stride)
        columns = range(0, width - patch + 1, stride)
        heat = np.zeros((len(rows), len(columns)))
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                occluded = image.clone()
                occluded[:, row:row + patch, column:column + patch] = 0
                heat[i, j] = float(torch.softmax(net(occluded[None]), dim=1)[0, top])
    return heat


@pytest.mark.item("6.1")
def test_heatmaps_match(nb, tolerance):
    net = network()
    rng = np.random.default_rng(61)
    image = rng.random((3, 24, 24)).astype(np.float32)  # in [0, 1], like a picture: zero is not its mean
    weights = {name: value.numpy() for name, value in net.state_dict().items()}
    got = nb.probe(PROBE, image, weights, SETTINGS)
    for (patch, stride), heat in zip(SETTINGS, got):
        want = reference(net, torch.tensor(image), patch, stride)
        expect_allclose(heat, want, tol=tolerance, what=f"the heatmap for patch {patch}, stride {stride}")
