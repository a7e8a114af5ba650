"""Question 2: the deep CNN of Tables 2 and 3, written as one block layered four times, its
test accuracy, the augmentation and normalisation of 2.2, and a better network of 2.3, all
measured by the grader on labels the kernel never had."""

import numpy as np
import pytest

from autograder.checking import CheckFailed
from autograder.checks.augmentation import differing, expect_random, transformed
from autograder.checks.layers import expect_repeated_block, expect_table, trace
from autograder.checks.training import accuracy
from autograder.errors import Referred

SHAPE = (3, 96, 96)

def _training_pictures(assignment, data, count=16):
    return assignment.module("splits").arrays(assignment, data)["x_train"][:count]


def _accuracy(nb, assignment, data, model):
    scores, labels = assignment.module("splits").scores(nb, model, assignment, data, "test")
    return accuracy(scores, labels), len(labels)


@pytest.mark.item("2.1a")
def test_deep_cnn(nb, given):
    expect_table(trace(nb, "deep_cnn", SHAPE), given["layers"], SHAPE, what="deep_cnn")


@pytest.mark.item("2.1b")
def test_block_layered(nb, given):
    expect_repeated_block(nb, "deep_cnn", times=given["times"])


@pytest.mark.item("2.1c")
def test_deep_accuracy(nb, assignment, data, given, measure):
    found, count = _accuracy(nb, assignment, data, given["model"])
    measure(found, note=f"{count} test images")


@pytest.mark.item("2.2a")
def test_augmentation(nb, assignment, data, given):
    pictures = _training_pictures(assignment, data)
    expect_random(nb, "aug_train_transform", pictures)
    changed = differing(nb, "aug_test_transform", pictures)
    if changed:
        raise CheckFailed(f"aug_test_transform gave two different results for {changed} of {len(pictures)} "
                          "pictures (under different seeds): it augments at random, which the test images should "
                          "not be")


@pytest.mark.item("2.2b")
def test_normalisation(nb, assignment, data, given):
    pictures = _training_pictures(assignment, data)
    seen = transformed(nb, "aug_test_transform", pictures)
    if seen.ndim != 4 or seen.shape[1] != 3:
        raise CheckFailed(f"aug_test_transform should give 3 x H x W tensors; it gave shape {seen.shape[1:]}")
    plain = pictures.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    mean_moved = np.abs(seen.mean(axis=(0, 2, 3)) - plain.mean(axis=(0, 2, 3)))
    spread = seen.std(axis=(0, 2, 3)) / np.maximum(plain.std(axis=(0, 2, 3)), 1e-9)
    if not (np.all(mean_moved > given["mean"]) or np.all(np.abs(spread - 1) > given["spread"])):
        raise CheckFailed(f"aug_test_transform leaves the pixels at ToTensor's [0, 1] scale (per channel the mean "
                          f"moves by {', '.join(f'{m:.3f}' for m in mean_moved)} and the spread by a factor "
                          f"{', '.join(f'{s:.2f}' for s in spread)}): normalise the channels "
                          "(transforms.Normalize)")


@pytest.mark.item("2.2c")
def test_augmented_accuracy(nb, assignment, data, given, measure):
    found, count = _accuracy(nb, assignment, data, given["model"])
    baseline, _ = _accuracy(nb, assignment, data, given["baseline"])
    measure(found, note=f"{count} test images; deep_cnn {baseline:.3f}, a gain of {found - baseline:+.3f}")


def _parameters(nb, model):
    return trace(nb, model, SHAPE).total


@pytest.mark.item("2.3a")
def test_better(nb, assignment, data, given, measure, parameters):
    model, base_model = given["model"], given["than"]
    found, _ = _accuracy(nb, assignment, data, model)
    baseline, _ = _accuracy(nb, assignment, data, base_model)
    params, base_params = _parameters(nb, model), _parameters(nb, base_model)
    measure(found, name=f"test accuracy of {model}",
            note=f"{params:,} parameters; {base_model} {baseline:.3f} with {base_params:,} parameters")
    if found < given["learned"]:
        reason = f"{model}'s test accuracy is {found:.3f}: it has not learned (a trained network reaches " \
                 f"{given['learned']})"
        synthetic = assignment.rubric.synthetic
        if synthetic.at_its_budget(data, parameters, "2"):  # the stand-in's short training may be what fell short
            raise Referred(f"{reason}; {synthetic.too_short(parameters, synthetic.unproven['2.3a'])}")
        raise CheckFailed(reason)
    if params < base_params and found >= baseline - given["level"]:
        return
    if found >= baseline + given["gain"]:
        return
    raise CheckFailed(f"{model} ({params:,} parameters, test accuracy {found:.3f}) is not better than {base_model} "
                      f"({base_params:,} parameters, {baseline:.3f}) as the grader measures them: it needs fewer "
                      f"parameters at an accuracy within {given['level']}, or an accuracy higher by "
                      f"{given['gain']}; faster convergence is marked from the report")
