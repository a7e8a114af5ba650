"""Question 2: the shallow MLP trained with SGD. The grader reads the networks' outputs on the
splits the kernel holds and computes losses and accuracies itself, with the labels of its
own copy of the data; test accuracies use the labels the kernel never had."""

import math

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_number
from autograder.checks.layers import expect_table, trace_any
from autograder.checks.training import accuracy, cross_entropy, optimizer, trained_further
from autograder.errors import Referred

SHALLOW = ["Linear(784, 32)", "ReLU", "Linear(32, 10)"]
PICKS = {
    "model_min_train_loss": ("train_loss", "the lowest training loss"),
    "model_min_val_loss": ("val_loss", "the lowest validation loss"),
    "model_max_val_acc": ("val_acc", "the highest validation accuracy"),
}
TIE = 1e-6  # two picks of the same epoch measure alike up to float32 arithmetic
#: Moves the final network's weights by noise and returns them as they were, or puts back the
#: weights it is given: a pick whose outputs move with them holds the network's own weights.
NUDGE_PROBE = '''
def probe(kept):
    import numpy as np
    import torch
    params = list(shallow_mlp.parameters())
    with torch.no_grad():
        if kept is not None:
            for p, value in zip(params, kept):
                p.copy_(torch.as_tensor(np.asarray(value)).to(p.device, p.dtype))
            return None
        kept = [p.detach().cpu().numpy().copy() for p in params]
        generator = torch.Generator().manual_seed(0)
        for p in params:
            p.add_(torch.randn(p.shape, generator=generator).to(p.device, p.dtype) * (p.abs().mean() + 0.1))
    return kept
'''

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
    """Each pick is the best of the networks the notebook holds on its own measure. A
    validation pick that gives exactly the final network's outputs holds the last epoch's
    weights. A copy of them was taken when that epoch was the best on its measure, and
    passes; the network itself, stored without a copy (its outputs move when the grader moves
    the network's weights), holds them whatever the training did, which only the training
    can tell, so it goes to a marker (the lowest training loss is the last epoch's in a
    converging training, as the handout expects). Measured on the outputs, not asked of the
    kernel.
    Test accuracies are measured for the marker, charged nowhere: whether the network
    learned is 2.1b's."""
    splits = assignment.module("splits")
    scores = splits.scores
    # one training made all four: they take their images one way, the way the last pick does best
    way = splits.way_for(nb, "model_max_val_acc", assignment, data, "hw2-q2q3")
    measured, outputs = {}, {}
    for model in [*PICKS, "shallow_mlp"]:
        train, y_train = scores(nb, model, assignment, data, "x_train", way=way)
        val, y_val = scores(nb, model, assignment, data, "x_val", way=way)
        outputs[model] = val
        measured[model] = {"train_loss": cross_entropy(train, y_train), "val_loss": cross_entropy(val, y_val),
                           "val_acc": accuracy(val, y_val)}
    for model in PICKS:
        test, y_test = scores(nb, model, assignment, data, "x_test", way=way)
        measure(accuracy(test, y_test), name=f"test accuracy of {model}")
    for model, (key, words) in PICKS.items():
        better = min if key != "val_acc" else max
        best = better(values[key] for values in measured.values())
        if abs(measured[model][key] - best) > TIE:
            winner = next(name for name, values in measured.items() if values[key] == best)
            raise CheckFailed(f"{model} should be the model with {words}; `{winner}` has a better one "
                              f"({best:.4f} against {measured[model][key]:.4f}), measured on the kernel's splits")
    final = [model for model in ("model_min_val_loss", "model_max_val_acc") if outputs[model].shape ==
             outputs["shallow_mlp"].shape and np.array_equal(outputs[model], outputs["shallow_mlp"])]
    if final:  # the last epoch's weights: a copy of it, or the network itself? measured, not asked
        kept = nb.probe(NUDGE_PROBE, None)
        try:
            moved = [model for model in final if not np.array_equal(
                scores(nb, model, assignment, data, "x_val", way=way)[0], outputs[model])]
        finally:
            nb.probe(NUDGE_PROBE, kept)
        if moved:
            raise Referred(f"{' and '.join(f'`{model}`' for model in moved)} {'is' if len(moved) == 1 else 'are'} "
                           "`shallow_mlp` itself, stored without a copy (moving shallow_mlp's weights moves "
                           f"{'its' if len(moved) == 1 else 'their'} outputs): the network as training left it, "
                           "which is the pick only if the last epoch was the best on its measure; the grader cannot "
                           "tell that from the networks, a marker reads the training")


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
    test, y_test = scores(nb, "model_lr_drop", assignment, data, "x_test")  # for the marker, charged nowhere
    measure(accuracy(test, y_test), name="test accuracy of model_lr_drop")
