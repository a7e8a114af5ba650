"""Occlusion sensitivity (Zeiler and Fergus, 4.2), checked against the grader's computation.

The student's function ``occlusion_sensitivity(model, image, patch_size, stride)`` runs in
the kernel on a small network and image of the grader's (the network's weights are sent,
so the kernel builds exactly the grader's network), for several patch sizes and strides.
Each heatmap must equal the grader's own: the patch set to zero at every position the
stride reaches (rows and columns from 0 to size − patch), scored by the softmax probability
of the class the network gives the unoccluded image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..checking import CheckFailed, expect_allclose

if TYPE_CHECKING:
    import torch

    from ..course.rubric import Tolerance
    from ..grading.channel import KernelChannel

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
def _subject():
    return __FUNCTION__


def probe(image, weights, settings):
    function = _subject()
    net = build(weights)
    return [function(net, torch.tensor(image), int(p), int(s)) for p, s in settings]
'''

#: (patch size, stride) pairs: strides that divide the free length and ones that do not.
SETTINGS = [(4, 2), (5, 3), (6, 6), (3, 1), (8, 5)]


def network(seed: int = 61) -> torch.nn.Module:
    """The grader's copy of the small network the probe builds in the kernel."""
    import torch

    scope: dict[str, object] = {}
    exec(NETWORK, scope)  # the grader's own code, shared with the probe
    torch.manual_seed(seed)
    made = scope["make"]()  # type: ignore[operator]
    return made.eval()


def reference(net: torch.nn.Module, image: torch.Tensor, patch: int, stride: int, *,
              accumulate: bool = False) -> np.ndarray:
    """The grader's heatmap for a C x H x W image; with ``accumulate``, the heatmap of the
    common mistake of zeroing each patch on the same image, never restored (row by row)."""
    import torch

    _, height, width = image.shape
    with torch.no_grad():
        top = int(net(image[None]).argmax())
        rows = range(0, height - patch + 1, stride)
        columns = range(0, width - patch + 1, stride)
        heat = np.zeros((len(rows), len(columns)))
        shared = image.clone()
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                occluded = shared if accumulate else image.clone()
                occluded[:, row:row + patch, column:column + patch] = 0
                heat[i, j] = float(torch.softmax(net(occluded[None]), dim=1)[0, top])
    return heat


def expect_heatmaps(nb: KernelChannel, *, tol: Tolerance, function: str = "occlusion_sensitivity",
                    settings: list[tuple[int, int]] = SETTINGS, seed: int = 61) -> None:
    """Fail unless the student's ``function`` gives the grader's heatmap for each setting,
    on an image in [0, 1] (so a zero patch is not the image's mean)."""
    import torch

    if not function.isidentifier():
        raise ValueError(f"{function!r} is not a name")
    net = network(seed)
    image = np.random.default_rng(seed).random((3, 24, 24)).astype(np.float32)
    weights = {name: value.numpy() for name, value in net.state_dict().items()}
    got = nb.probe(PROBE.replace("__FUNCTION__", function), image, weights, settings)
    for (patch, stride), heat in zip(settings, got):
        want = reference(net, torch.tensor(image), patch, stride)
        try:
            expect_allclose(heat, want, tol=tol, what=f"the heatmap for patch {patch}, stride {stride}")
        except CheckFailed:
            if not _accumulated(heat, reference(net, torch.tensor(image), patch, stride, accumulate=True), tol):
                raise
            raise CheckFailed(f"the heatmap for patch {patch}, stride {stride} drifts from the first patch on: "
                              "each patch is zeroed on the same image, which is never restored, so the patches "
                              "accumulate (occlude a copy of the image for each patch)") from None


def _accumulated(heat: object, drifted: np.ndarray, tol: Tolerance) -> bool:
    """Whether ``heat`` is the heatmap of patches accumulated on one image (``drifted``)."""
    try:
        values = np.asarray(heat, dtype=np.float64)
    except (TypeError, ValueError):  # not a grid of numbers: the first complaint says what it is
        return False
    return values.shape == drifted.shape and bool(np.allclose(values, drifted, rtol=tol.rel, atol=tol.abs))
