"""Question 2: the shallow MLP trained with SGD. The grader reads the networks' outputs on the
splits the kernel holds and computes losses and accuracies itself, with the labels of its
own copy of the data; test accuracies use the labels the kernel never had."""

import math

import pytest

from autograder.checking import CheckFailed, as_number
from autograder.checks.layers import expect_table, trace_any
from autograder.checks.training import accuracy, cross_entropy, optimizer, trained_further

SHALLOW = ["Linear(784, 32)", "ReLU", "Linear(32, 10)"]
PICKS = {
    "model_min_train_loss": ("train_loss", "the lowest training loss"),
    "model_min_val_loss": ("val_loss", "the lowest validation loss"),
    "model_max_val_acc": ("val_acc", "the highest validation accuracy"),
}
TIE = 1e-6  # two picks of the same epoch measure alike up to float32 arithmetic


@pytest.mark.item("2.1a")
def test_shallow_mlp_and_sgd(nb, assignment):
    shapes = assignment.module("splits").SHAPES
    expect_table(trace_any(nb, "shallow_mlp", shapes), SHALLOW, (784,), what="shallow_mlp")
    optimizer(nb, "optimizer_sgd", "shallow_mlp").expect(("SGD",), what="optimizer_sgd", model="shallow_mlp")


@pytest.mark.item("2.1b")
def test_converged(nb, assignment, data, given):
    splits = assignment.module("splits")
    found = splits.arrays(assignment, data, "hw2-q2q3")
    want = found["y_train"]
    way = splits.way_for(nb, "shallow_mlp", assignment, data, "hw2-q2q3")
    further = trained_further(nb, "shallow_mlp", "optimizer_sgd", found["x_train"], want,
                              epochs=given["epochs"], batch=given["batch"], prepare=way.expression)
    if further.before.shape != (len(want), 10):
        raise CheckFailed(f"`shallow_mlp` should give 10 scores per image; it gave shape {further.before.shape}")
    before, after = cross_entropy(further.before, want), cross_entropy(further.after, want)
    chance = math.log(10)
    if not before < given["learned"] * chance:
        raise CheckFailed(f"shallow_mlp's training loss is {before:.3f}, near chance ({chance:.3f}): it has not "
                          "learned, so it has not converged")
    allowed = given["drop"] * before + given["slack"]
    if before - after > allowed:
        raise CheckFailed(f"two more epochs with optimizer_sgd's settings lower shallow_mlp's training loss from "
                          f"{before:.4f} to {after:.4f}: it had not converged (a flat curve drops by "
                          f"{allowed:.4f} at most)")


@pytest.mark.item("2.1c")
def test_three_picks(nb, assignment, data, given, measure):
    splits = assignment.module("splits")
    scores = splits.scores
    # one training made all four: they take their images one way, the way the last pick does best
    way = splits.way_for(nb, "model_max_val_acc", assignment, data, "hw2-q2q3")
    measured = {}
    for model in [*PICKS, "shallow_mlp"]:
        train, y_train = scores(nb, model, assignment, data, "x_train", way=way)
        val, y_val = scores(nb, model, assignment, data, "x_val", way=way)
        measured[model] = {"train_loss": cross_entropy(train, y_train), "val_loss": cross_entropy(val, y_val),
                           "val_acc": accuracy(val, y_val)}
    for model, (key, words) in PICKS.items():
        better = min if key != "val_acc" else max
        best = better(values[key] for values in measured.values())
        if abs(measured[model][key] - best) > TIE:
            winner = next(name for name, values in measured.items() if values[key] == best)
            raise CheckFailed(f"{model} should be the model with {words}; `{winner}` has a better one "
                              f"({best:.4f} against {measured[model][key]:.4f}), measured on the kernel's splits")
    tested = {}
    for model in PICKS:
        test, y_test = scores(nb, model, assignment, data, "x_test", way=way)
        tested[model] = measure(accuracy(test, y_test), name=f"test accuracy of {model}")
    if tested["model_max_val_acc"] < given["floor"]:
        raise CheckFailed(f"model_max_val_acc's test accuracy is {tested['model_max_val_acc']:.3f}; a trained "
                          f"network reaches {given['floor']} at least")


@pytest.mark.item("2.2a")
def test_learning_rate_drop(nb, assignment, data, given, measure):
    scores = assignment.module("splits").scores
    found = optimizer(nb, "optimizer_lr_drop", "model_lr_drop")
    found.expect(("SGD",), what="optimizer_lr_drop", model="model_lr_drop")
    started = [lr for lr in found.setting("initial_lr") if lr is not None]
    # a learning-rate scheduler records where it started in the optimiser itself; a drop
    # written by hand leaves the notebook's own starting rate to read
    initial = max(float(lr) for lr in started) if started else as_number(nb.get("initial_lr"), "initial_lr")
    final = max(float(lr) for lr in found.setting("lr"))
    if not final * given["factor"] <= initial * (1 + 1e-9):
        raise CheckFailed(f"optimizer_lr_drop ends at a learning rate of {final:g}, from {initial:g}: it should "
                          f"be dropped (divided by {given['factor']} or more)")
    test, y_test = scores(nb, "model_lr_drop", assignment, data, "x_test")
    measure(accuracy(test, y_test), name="test accuracy of model_lr_drop")
    if accuracy(test, y_test) < given["floor"]:
        raise CheckFailed(f"model_lr_drop's test accuracy is {accuracy(test, y_test):.3f}; a trained network "
                          f"reaches {given['floor']} at least")
