"""Question 4: the denoising autoencoder. Architecture and optimiser per Table 3, the PSNR
function against torchmetrics, and the PSNR gain of the trained model on faces the
kernel never saw (noise added here, with a seed the kernel does not know). The faces are
fed the way the autoencoder denoises visible faces best (flat or 1 x 64 x 64, in [0, 1]
or 0 to 255), as students train it differently."""

import numpy as np
import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio

from autograder.checking import CheckFailed, expect_close
from autograder.checks.inputs import choose_reconstruction, reconstruct, reconstruction_ways
from autograder.checks.training import optimizer
from autograder.data import faces

LAYERS_PROBE = '''
def probe():
    import inspect
    leaves = [m for m in dae.modules() if not list(m.children())]
    try:
        source = inspect.getsource(type(dae))
    except (OSError, TypeError):
        source = ""
    return {
        "layers": [[type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None)]
                   for m in leaves],
        "functional_leaky_relu": "leaky_relu" in source,
    }
'''

PSNR_PROBE = '''
def probe(prediction, target):
    import torch
    return psnr(torch.tensor(prediction), torch.tensor(target))
'''

#: Flat or as pictures, in [0, 1] or 0 to 255; not minus the mean face, which the handout
#: does not ask for and which would let a network that outputs nothing earn the mean face's PSNR.
WAYS = [way for way in reconstruction_ways((1, 64, 64)) + reconstruction_ways((64, 64))[3:] if "mean" not in way.words]


def db(prediction, target):
    return float(10 * np.log10(1.0 / np.mean((prediction.astype(np.float64) - target) ** 2)))


@pytest.mark.item("4.2")
def test_architecture(nb, given):
    found = nb.probe(LAYERS_PROBE)
    linear = [(i, o) for kind, i, o in found["layers"] if kind == "Linear"]
    if not linear:
        raise CheckFailed("dae has no nn.Linear layer")
    pixels, code = given["pixels"], given["code"]
    if tuple(linear[0]) != (pixels, code):
        raise CheckFailed(
            f"the encoder should be one layer from {pixels} pixels to {code} neurons (Table 3); "
            f"dae's first linear layer maps {linear[0][0]} to {linear[0][1]}"
        )
    kinds = {kind for kind, _, _ in found["layers"]}
    if "LeakyReLU" not in kinds and not found["functional_leaky_relu"]:
        used = ", ".join(sorted(kinds - {"Linear"})) or "no activation"
        raise CheckFailed(f"Table 3 asks for Leaky ReLU; dae uses {used}")


@pytest.mark.item("4.3")
def test_optimizer(nb, given, tolerance):
    found = optimizer(nb, "optimizer", "dae")
    if found.type != given["optimizer"]:
        raise CheckFailed(f"optimizer should be {given['optimizer']} (Table 3), is {found.type}")
    if not found.covers:
        raise CheckFailed("optimizer does not update every trainable parameter of dae")
    for group in found.groups:
        expect_close(group["lr"], given["lr"], tol=tolerance, what="the learning rate")
        expect_close(group["weight_decay"], given["weight_decay"], tol=tolerance, what="the weight decay")


@pytest.mark.item("4.5")
def test_psnr_agrees_with_torchmetrics(nb, tolerance):
    rng = np.random.default_rng(41_794)
    metric = PeakSignalNoiseRatio(data_range=1.0)
    for sigma in (0.02, 0.1, 0.3):
        target = rng.random((6, 4096)).astype(np.float32)
        prediction = np.clip(target + rng.normal(0, sigma, target.shape), 0, 1).astype(np.float32)
        want = float(metric(torch.tensor(prediction), torch.tensor(target)))
        expect_close(nb.probe(PSNR_PROBE, prediction, target), want, tol=tolerance, what=f"psnr at noise {sigma}")


@pytest.mark.item("4.6")
def test_denoising_gain(nb, data, given, measure):
    clean = faces.heldout(data.source).reshape(-1, 64 * 64).astype(np.float32) / 255.0
    rng = np.random.default_rng(given["noise_seed"])
    noisy = np.clip(clean + rng.normal(0, given["noise_std"], clean.shape), 0, 1).astype(np.float32)
    visible = faces.visible(data.source).reshape(-1, 64 * 64).astype(np.float32) / 255.0
    seen = visible[:64]
    fed = np.clip(seen + np.random.default_rng(given["noise_seed"] + 1).normal(0, given["noise_std"], seen.shape),
                  0, 1).astype(np.float32)
    way = choose_reconstruction(nb, "dae", seen, WAYS, inputs=fed)
    rebuilt = reconstruct(nb, "dae", noisy, way, visible.mean(axis=0))
    before, after = db(noisy, clean), db(rebuilt, clean)
    measure(after - before, note=f"PSNR {before:.2f} dB noisy, {after:.2f} dB reconstructed, {len(clean)} held-out "
                                 f"faces fed {way.words} (the way it denoises visible faces best)")
