"""Task 3: the SVHN CNN. Its test accuracy is measured here, on the grader's copy of the test
pictures, fed to the network the way it does best on training pictures (divided by 255,
centred on 0.5 or standardised per channel: ``checks.inputs``), since students prepare them
in all these ways, with the grader's own Gaussian noise added to what the network gets
where asked; the labels stay on the grader's side. The parameter count is the model's own,
add_noise is tested as a sample of a * N(0, 1), the augmentation must be random and the
retrained CNN must have learned."""

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array, as_number
from autograder.checks.augmentation import expect_random
from autograder.checks.inputs import choose_way, class_scores_as, picture_ways, with_noise
from autograder.checks.training import accuracy
from autograder.data import svhn

COUNT_PROBE = '''
def _subject():
    return cnn


def probe():
    every = sum(p.numel() for p in _subject().parameters())
    trainable = sum(p.numel() for p in _subject().parameters() if p.requires_grad)
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


def _split(source, split):
    return svhn.read_split(svhn.root(source) / svhn.FILES[split])


def accuracies(nb, data, given, model, noises):
    """The test accuracy of the notebook's ``model`` at each noise level, measured here."""
    key = ("svhn", "train")
    if key not in nb.memo:
        nb.memo[key] = _split(data.source, "train")
    images, labels = nb.memo[key]
    scaled = images.astype(np.float64) / 255.0
    ways = picture_ways(mean=list(scaled.mean(axis=(0, 1, 2))), std=list(scaled.std(axis=(0, 1, 2))))
    way = choose_way(nb, model, images, labels, ways, what="training", classes=10)
    test = _split(data.source, "test")[0]
    truth = svhn.heldout(data.source)
    found = []
    for noise in noises:
        fed = with_noise(way, noise, given["noise_seed"]) if noise else way
        scores = class_scores_as(nb, model, test, fed, what="the test pictures", classes=10,
                                 timeout=given["probe_timeout_s"])
        found.append(accuracy(scores, truth))
    return found, way


@pytest.mark.item("T3.1")
def test_test_accuracy(nb, data, given, measure):
    (value,), way = accuracies(nb, data, given, "cnn", [0.0])
    measure(value, note=f"{len(svhn.heldout(data.source))} test images fed {way.words}")


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
    for noise, value in zip(noises, accuracies(nb, data, given, "cnn", noises)[0]):
        measure(value, name=f"accuracy, a = {noise}")


@pytest.mark.item("T3.4")
def test_augmentation(nb, data, given, measure):
    images = _split(data.source, "train")[0][:16]
    expect_random(nb, "svhn_aug_transform", images, timeout=given["probe_timeout_s"])
    (value,), _ = accuracies(nb, data, given, "cnn_aug", [0.0])
    measure(value, name="accuracy of cnn_aug")
    if value < given["trained_floor"]:
        raise CheckFailed(f"cnn_aug reaches {value:.1%} on the test set: it has not learned "
                          f"(at least {given['trained_floor']:.0%} expected)")
