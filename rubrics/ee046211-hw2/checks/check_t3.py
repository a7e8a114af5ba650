"""Task 3: the SVHN CNN. The kernel reads the test images of its data view (whose labels
are all 10) through the student's svhn_test_transform and returns predictions, with the
grader's own Gaussian noise added to those tensors where asked; the labels stay on the
grader's side. The parameter count is the model's own, add_noise is tested as a sample of
a * N(0, 1), the augmentation must be random and the retrained CNN must have learned."""

import numpy as np
import pytest
from scipy.io import loadmat

from autograder.checking import CheckFailed, as_array, as_number, as_vector
from autograder.checks.augmentation import expect_random
from autograder.data import svhn

# MODEL is replaced by the name of the notebook's model before the probe is sent.
PREDICT_PROBE = '''
def probe(root, noises, seed, batch_size):
    import numpy as np
    import torch
    from PIL import Image
    from scipy.io import loadmat
    images = np.transpose(loadmat(root + "/svhn/test_32x32.mat")["X"], (3, 0, 1, 2))
    net = MODEL
    device = next(net.parameters()).device
    training = net.training
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    predicted = [[] for _ in noises]
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([svhn_test_transform(Image.fromarray(image))
                                 for image in images[start:start + batch_size]])
            for column, noise in enumerate(noises):
                noisy = batch + noise * torch.randn(batch.shape, generator=generator) if noise else batch
                predicted[column].append(net(noisy.to(device)).argmax(dim=1).cpu().numpy())
    net.train(training)
    return [np.concatenate(column) for column in predicted]
'''

COUNT_PROBE = '''
def probe():
    every = sum(p.numel() for p in cnn.parameters())
    trainable = sum(p.numel() for p in cnn.parameters() if p.requires_grad)
    return [every, trainable]
'''

NOISE_PROBE = '''
def probe(base, noises):
    import torch
    images = torch.from_numpy(base)
    calls = []
    for noise in noises:
        calls.append(add_noise(images.clone(), noise))
    return calls
'''

# Each image twice through the augmentation, under different seeds: a random augmentation
# gives different results (tensors, or PIL images for a transform ending without ToTensor).
def accuracies(nb, data, given, model, noises):
    """The test accuracy of the notebook's `model` at each noise level, measured here."""
    labels = svhn.heldout(data.source)
    probe = PREDICT_PROBE.replace("MODEL", model)
    columns = nb.probe(probe, str(data.view), list(noises), given["noise_seed"], 256, timeout=given["probe_timeout_s"])
    if not isinstance(columns, list) or len(columns) != len(noises):
        raise CheckFailed(f"{model}'s predictions could not be read")
    return [float(np.mean(as_vector(c, f"{model}'s predicted classes", len(labels)) == labels)) for c in columns]


@pytest.mark.item("T3.1")
def test_test_accuracy(nb, data, given, measure):
    (accuracy,) = accuracies(nb, data, given, "cnn", [0.0])
    measure(accuracy, note=f"{len(svhn.heldout(data.source))} test images")


@pytest.mark.item("T3.2")
def test_parameter_count(nb):
    stated = as_number(nb.get("t3_params"), "t3_params")
    every, trainable = nb.probe(COUNT_PROBE)
    if stated not in (every, trainable):
        raise CheckFailed(f"t3_params = {stated:,.0f}; cnn has {every:,} parameters"
                          + (f" ({trainable:,} trainable)" if trainable != every else "")
                          + ", biases and normalisation layers included")


@pytest.mark.item("T3.3")
def test_noise(nb, data, given, measure):
    """add_noise(images, a) must add noise of mean 0 and standard deviation a, tested on
    49,152 values for each a. The accuracy with the grader's own noise is then measured
    and reported."""
    base = np.random.default_rng(given["noise_seed"]).random((16, 3, 32, 32), dtype=np.float32)
    noises = given["noise"]
    calls = nb.probe(NOISE_PROBE, base, noises)
    if not isinstance(calls, list) or len(calls) != len(noises):
        raise CheckFailed("add_noise's results could not be read")
    for noise, out in zip(noises, calls):
        added = as_array(out, f"add_noise(images, {noise})", shape=base.shape).astype(np.float64) - base
        mean, std = added.mean(), added.std()
        if abs(mean) > 5 * noise / np.sqrt(added.size) or abs(std / noise - 1) > 0.05:
            raise CheckFailed(f"add_noise(images, {noise}) adds values of mean {mean:.3g} and std {std:.3g}; "
                              f"a * N(0, 1) has mean 0 and std {noise}")
    for noise, value in zip(noises, accuracies(nb, data, given, "cnn", noises)):
        measure(value, name=f"accuracy, a = {noise}")


@pytest.mark.item("T3.4")
def test_augmentation(nb, data, given, measure):
    images = np.transpose(loadmat(data.source / "svhn" / "train_32x32.mat")["X"][..., :16], (3, 0, 1, 2))
    expect_random(nb, "svhn_aug_transform", images, timeout=given["probe_timeout_s"])
    (accuracy,) = accuracies(nb, data, given, "cnn_aug", [0.0])
    measure(accuracy, name="accuracy of cnn_aug")
    if accuracy < given["trained_floor"]:
        raise CheckFailed(f"cnn_aug reaches {accuracy:.1%} on the test set: it has not learned "
                          f"(at least {given['trained_floor']:.0%} expected)")
