"""Part 3: STL10 CNNs and adversarial robustness. The grader builds `YourModel` with settings
of its own and reads its structure and its forward pass; it measures `best_cnn` and the
robust model itself on the test images, whose labels the kernel never has; `augment` and
`early_stopping` are called on the grader's inputs and judged against the grader's own rule
(`mixup`, the attacks and `SAM`: check_part3_functions.py)."""

import math

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_dict, as_list, as_number, describe_value
from autograder.checks import attacks
from autograder.checks.frameworks import KERAS_PRELUDE, not_a_module
from autograder.checks.inputs import choose_way, class_scores_as, picture_ways
from autograder.checks.saved import expect_loadable, loaded_expression, saved_file
from autograder.errors import Referred

SHAPE = (3, 96, 96)
SETTINGS = [(blocks, skip, rate) for blocks in (2, 3, 4) for skip in (True, False) for rate in (1e-3, 1e-4)]


def _stl10(data, usage):
    from autograder.data import stl10

    folder = stl10.folder_of(data.source)
    images = stl10.read_images(folder / f"{usage}_X.bin")
    labels = stl10.read_labels(folder / f"{usage}_y.bin").astype(np.int64) - 1
    return images, labels


def _pictures(images):
    """uint8 N x H x W x C as float32 N x C x H x W in [0, 1]."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255


# 3.2 and 3.3: YourModel built by the grader

BUILD_PROBE = KERAS_PRELUDE + '''
def _classes():
    return YourModel, BaseImageClassifier


def probe(settings, shape):
    import torch
    made, base = _classes()
    found = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for blocks, skip, rate in settings:
            try:
                model = made(num_blocks=blocks, use_skip=skip, learning_rate=rate)
            except Exception as error:
                found.append({"error": f"{type(error).__name__}: {error}"[:300]})
                continue
            row = {"base": isinstance(model, base), "module": isinstance(model, torch.nn.Module), "type": _what(model)}
            if row["module"]:
                first = next(iter(model.parameters()), None)
                device = first.device if first is not None else torch.device("cpu")
                model.eval()
                counted = _Convolutions()
                try:
                    with torch.no_grad(), counted:
                        out = model(torch.rand(2, *shape, device=device))
                    row["out"] = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                except Exception as error:
                    row["out"] = f"{type(error).__name__}: {error}"[:300]
                row["convolutions"] = counted.count
            found.append(row)
    return found


import torch as _ag_torch
from torch.overrides import TorchFunctionMode as _AgMode


class _Convolutions(_AgMode):
    """Counts the 2-D convolutions a forward pass runs, in modules or called as functions."""

    count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is _ag_torch.conv2d:  # nn.Conv2d and F.conv2d both come here
            self.count += 1
        return func(*args, **(kwargs or {}))
'''

JOINS_PROBE = KERAS_PRELUDE + '''
def _classes():
    return YourModel


def _joins(output, source):
    """Nodes of the backward graph that add (or concatenate) two tensors each computed from the
    input: residual joins. A bias or any other parameter added is not a join."""
    import sys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    seen, joins = {}, [0]

    def reaches(node):
        if node is None:
            return False
        if node in seen:
            return seen[node]
        seen[node] = False
        if getattr(node, "variable", None) is source:
            seen[node] = True
            return True
        parents = [reaches(parent) for parent, _ in node.next_functions]
        seen[node] = any(parents)
        if sum(parents) >= 2 and type(node).__name__.startswith(("AddBackward", "CatBackward", "StackBackward")):
            joins[0] += 1
        return seen[node]

    reaches(output.grad_fn)
    return joins[0]


def probe(settings, shape):
    import torch
    made = _classes()
    found = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for blocks, skip in settings:
            model = made(num_blocks=blocks, use_skip=skip, learning_rate=1e-3)
            if not isinstance(model, torch.nn.Module):
                return {"not_module": _what(model)}
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else torch.device("cpu")
            model.eval()
            x = torch.rand(2, *shape, device=device, requires_grad=True)
            out = model(x)
            found.append(_joins(out, x) if isinstance(out, torch.Tensor) and out.grad_fn is not None else -1)
    return found
'''


def built(nb):
    if "built" not in nb.memo:
        nb.memo["built"] = nb.probe(BUILD_PROBE, [list(s) for s in SETTINGS], list(SHAPE), timeout=600)
    return nb.memo["built"]


@pytest.mark.item("3.2a")
def test_your_model(nb, given):
    found = as_list(built(nb), "what the grader found building YourModel")
    convolutions = {}
    for (blocks, skip, rate), row in zip(SETTINGS, found):
        call = f"YourModel(num_blocks={blocks}, use_skip={skip}, learning_rate={rate:g})"
        if "error" in row:
            raise CheckFailed(f"`{call}` raised {row['error']}")
        if not row["module"]:
            raise not_a_module(call, str(row.get("type", "")), "the grader to build and run it as a PyTorch network")
        if not row["base"]:
            raise CheckFailed(f"`{call}` should be a BaseImageClassifier (a torch.nn.Module)")
        if row.get("out") != [2, given["classes"]]:
            raise CheckFailed(f"`{call}` should map a batch (2, 3, 96, 96) to ({2}, {given['classes']}) class scores; "
                              f"it gave {describe_value(row.get('out'))}")
        convolutions.setdefault((skip, rate), []).append(int(row["convolutions"]))
    for (skip, rate), counts in convolutions.items():
        if not all(a < b for a, b in zip(counts, counts[1:])):
            raise CheckFailed(f"YourModel's convolutions should grow with num_blocks; with use_skip={skip}, "
                              f"learning_rate={rate:g} its forward pass runs {', '.join(map(str, counts))} "
                              "convolutions for num_blocks 2, 3, 4")


@pytest.mark.item("3.3a")
def test_skip_connections(nb):
    settings = [(blocks, skip) for blocks in (2, 3) for skip in (True, False)]
    if "joins" not in nb.memo:
        nb.memo["joins"] = nb.probe(JOINS_PROBE, [list(s) for s in settings], list(SHAPE), timeout=600)
    if isinstance(nb.memo["joins"], dict):
        raise not_a_module("YourModel(...)", str(nb.memo["joins"].get("not_module")),
                           "its residual joins read from a PyTorch forward pass's graph")
    for (blocks, skip), joins in zip(settings, as_list(nb.memo["joins"], "the residual joins found")):
        joins = int(as_number(joins, "the residual joins found"))
        if joins < 0:
            raise CheckFailed(f"YourModel(num_blocks={blocks}, use_skip={skip}) should return a tensor computed from "
                              "its input")
        if skip and joins < blocks:
            raise CheckFailed(f"YourModel(num_blocks={blocks}, use_skip=True): its forward pass adds a block's input "
                              f"to its output {joins} time(s), fewer than once per block")
        if not skip and joins:
            raise CheckFailed(f"YourModel(num_blocks={blocks}, use_skip=False): its forward pass still adds a block's "
                              f"input to its output ({joins} join(s)): without skip connections there should be none")


# 3.4: the grid and best_cnn

SETTING_PROBE = '''
def _subject():
    return best_cnn


def probe():
    model = _subject()
    return {key: getattr(model, key, None) for key in ("num_blocks", "use_skip", "learning_rate")}
'''


def cnn_grid(nb):
    found = {}
    for number, row in enumerate(as_list(nb.get("cnn_grid_results"), "`cnn_grid_results`"), start=1):
        row = as_dict(row, f"row {number} of `cnn_grid_results`",
                      ("num_blocks", "use_skip", "learning_rate", "val_accuracy"))
        rate = as_number(row["learning_rate"], f"row {number}'s learning_rate")
        key = (int(as_number(row["num_blocks"], f"row {number}'s num_blocks")), bool(row["use_skip"]),
               next((r for r in (1e-3, 1e-4) if math.isclose(rate, r, rel_tol=1e-6)), rate))
        found[key] = as_number(row["val_accuracy"], f"row {number}'s val_accuracy")
    return found


@pytest.mark.item("3.4a")
def test_cnn_grid(nb):
    found = cnn_grid(nb)
    missing = [s for s in SETTINGS if s not in found]
    if missing:
        listed = ", ".join(f"num_blocks={b} use_skip={s} learning_rate={r:g}" for b, s, r in missing)
        raise CheckFailed(f"`cnn_grid_results` should cover the {len(SETTINGS)} settings of the grid; missing: "
                          f"{listed}")


def measured_accuracy(nb, assignment, data, model):
    """``model``'s accuracy on the test images, whose labels the kernel never has, fed the way
    it does best on training images: divided by 255 as the base code's `to_tensor` gives them,
    or as a notebook that changed `to_tensor` gives them (centred, standardised, 0 to 255)."""
    key = ("test accuracy", model)
    if key not in nb.memo:
        images, labels = _stl10(data, "test")
        scores = class_scores_as(nb, model, images, fed_way(nb, data, model), what="the test images", classes=10,
                                 timeout=1200)
        nb.memo[key] = float(np.mean(scores.argmax(axis=1) == labels))
    return nb.memo[key]


def fed_way(nb, data, model):
    """The way ``model`` (an expression in the notebook) takes its pictures: the one it does
    best with on training images (``inputs.picture_ways``)."""
    key = ("fed", model)
    if key not in nb.memo:
        train, train_labels = _stl10(data, "train")
        pixels = train[:500].reshape(-1, 3) / 255.0  # the channels' mean and std, as a notebook computes them
        nb.memo[key] = choose_way(nb, model, train, train_labels, picture_ways(mean=list(pixels.mean(0)), std=list(
            pixels.std(0))), what="training", classes=10)
    return nb.memo[key]


@pytest.mark.item("3.4b")
def test_best_cnn(nb, assignment, data, measure):
    found = cnn_grid(nb)
    setting = as_dict(nb.probe(SETTING_PROBE), "best_cnn's settings", ("num_blocks", "use_skip", "learning_rate"))
    if any(value is None for value in setting.values()):
        raise CheckFailed("`best_cnn` should be a YourModel, with its num_blocks, use_skip and learning_rate")
    rate = as_number(setting["learning_rate"], "best_cnn.learning_rate")
    chosen = (int(as_number(setting["num_blocks"], "best_cnn.num_blocks")), bool(setting["use_skip"]),
              next((r for r in (1e-3, 1e-4) if math.isclose(rate, r, rel_tol=1e-6)), rate))
    if found and found.get(chosen, -1.0) < max(found.values()):
        raise CheckFailed(f"`best_cnn` is num_blocks={chosen[0]}, use_skip={chosen[1]}, learning_rate={chosen[2]:g}, "
                          f"with validation accuracy {found.get(chosen, float('nan')):.4g} in `cnn_grid_results`; "
                          f"the best there is {max(found.values()):.4g}")
    measure(measured_accuracy(nb, assignment, data, "best_cnn"),
            note="the test images, labels withheld from the kernel")


# 3.5: augmentation and early stopping

AUGMENT_PROBE = KERAS_PRELUDE + '''
def _classes():
    return YourModel


def probe(images, labels):
    import random
    import numpy as np
    import torch
    made = _classes()
    found = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = made(num_blocks=2, use_skip=False, learning_rate=1e-3)
        if not isinstance(model, torch.nn.Module):
            return {"not_module": _what(model)}
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
        x = torch.as_tensor(images).permute(0, 3, 1, 2).float().div(255).to(device)
        outs = []
        states = np.random.get_state(), random.getstate()
        try:
            for seed in (1, 2, 3, 4, 1):  # four seeds, then the first again
                torch.manual_seed(seed)
                np.random.seed(seed)
                random.seed(seed)
                out = model.augment(x.clone())
                if not isinstance(out, torch.Tensor):
                    return {"not_tensor": type(out).__module__ + "." + type(out).__qualname__}
                outs.append(out.detach().float().cpu())
        finally:
            np.random.set_state(states[0])
            random.setstate(states[1])
        found["shape"] = list(outs[0].shape)
        found["low"], found["high"] = float(outs[0].min()), float(outs[0].max())
        if all(out.shape == x.shape for out in outs):
            plain = x.cpu()
            found["changed"] = int(sum(not torch.equal(a, b) for a, b in zip(outs[0], plain)))
            found["differ"] = int(sum(any(not torch.equal(a, out[i]) for out in outs[1:4])
                                      for i, a in enumerate(outs[0])))
            found["reproduced"] = int(sum(torch.equal(a, b) for a, b in zip(outs[0], outs[4])))
        counts = {}
        for flag in (True, False):
            model = made(num_blocks=2, use_skip=False, learning_rate=1e-3)
            model.verbose = False
            model.is_augmentation = flag
            calls = [0]
            original = model.augment

            def counted(batch, _original=original, _calls=calls):
                _calls[0] += 1
                return _original(batch)

            model.augment = counted
            model.fit(images, labels, images, labels, epochs=1)
            counts[str(flag)] = calls[0]
        found["calls"] = counts
    return found
'''

STOP_PROBE = '''
def _subject():
    return early_stopping


def _classes():
    return YourModel


def probe(sequences, images, labels, epochs):
    import torch
    rule, made = _subject(), _classes()
    answers = [[bool(rule(list(sequence[:t]), patience=3)) for t in range(1, len(sequence) + 1)]
               for sequence in sequences]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = made(num_blocks=2, use_skip=False, learning_rate=0.0)
        model.verbose = False
        model.fit(images, labels, images, labels, epochs=epochs)
    history = getattr(model, "history", None)
    recorded = history.get("val_accuracy") if isinstance(history, dict) else None
    return {"answers": answers, "recorded": None if recorded is None else [float(v) for v in recorded]}
'''

#: Validation accuracies, epoch by epoch, each prefix judged; they tell patience 3 from 1, 2
#: and 4, the best so far from the previous epoch, and a tie from an improvement.
SEQUENCES = [
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    [0.3, 0.5, 0.4, 0.45, 0.48, 0.6, 0.59, 0.58, 0.6, 0.2],
    [0.5, 0.6, 0.55, 0.58, 0.57, 0.56, 0.7],
    [0.2, 0.4, 0.35, 0.36, 0.41, 0.3, 0.3, 0.41, 0.2],
    [0.9, 0.1, 0.2, 0.3, 0.4, 0.5],
]


def stops(values, patience=3):
    """The grader's rule (Keras's EarlyStopping on val_accuracy, min_delta 0): stop when the last
    ``patience`` epochs did not rise above the best before them."""
    return len(values) > patience and max(values[-patience:]) <= max(values[:-patience])


def stops_after_the_epoch_before(values, patience=3):
    """The handout's words read the other way ("cannot increase in three consecutive
    epochs"): stop when each of the last ``patience`` epochs did not rise above the one before."""
    return len(values) > patience and all(values[-i] <= values[-i - 1] for i in range(1, patience + 1))


#: The readings of the handout's rule a careful marker accepts, the grader's first.
READINGS = {"the best so far": stops, "the epoch before": stops_after_the_epoch_before}


def _training(data, count=32):
    images, labels = _stl10(data, "train")
    return images[:count], labels[:count]


@pytest.mark.item("3.5a")
def test_augmentation(nb, data):
    images, labels = _training(data, 16)
    found = as_dict(nb.probe(AUGMENT_PROBE, images, labels, timeout=600), "what augment and fit did", ())
    if "not_module" in found:
        raise not_a_module("YourModel(...)", str(found["not_module"]), "its `augment` and `fit` run by the grader "
                           "on PyTorch tensors")
    if "not_tensor" in found:
        raise CheckFailed(f"`augment(x)` should return a tensor like x; it returned a {found['not_tensor']}")
    if found["shape"] != [len(images), *SHAPE]:
        raise CheckFailed(f"`augment(x)` should keep the batch's shape {(len(images), *SHAPE)}; it gave "
                          f"{tuple(found['shape'])}")
    if found["low"] < -1e-6 or found["high"] > 1 + 1e-6:
        raise CheckFailed(f"`augment(x)` should keep pixel values in [0, 1]; they range over "
                          f"[{found['low']:.3g}, {found['high']:.3g}]")
    # Random is a property across seeds, not a share of images changed (a flip with p = 0.5
    # leaves half as they were): some image differs under four seeds, each reproduces under one.
    if not found["changed"] or not found["differ"]:
        raise CheckFailed(f"`augment(x)` gave the same result under four different seeds for each of {len(images)} "
                          f"images{'' if found['changed'] else ', each as it was'}: it does not augment at random")
    if found["reproduced"] < len(images):
        raise Referred(f"`augment(x)` gave a different result under the same seed for "
                       f"{len(images) - found['reproduced']} of {len(images)} images: what varies is not drawn from "
                       "the seeded generators (torch's, numpy's or Python's) but from a generator of its own, which "
                       "is random, or from a counter or the clock, which is not; a marker reads it")
    calls = found["calls"]
    if not calls["True"]:
        raise CheckFailed("`fit` did not call `augment` with is_augmentation=True")
    if calls["False"]:
        raise CheckFailed(f"`fit` called `augment` {calls['False']} time(s) with is_augmentation=False: it should "
                          "augment only when asked")


@pytest.mark.item("3.5b")
def test_early_stopping(nb, data):
    images, labels = _training(data)
    epochs = 12
    found = as_dict(nb.probe(STOP_PROBE, SEQUENCES, images, labels, epochs, timeout=600), "early stopping",
                    ("answers", "recorded"))
    answered = list(zip(SEQUENCES, found["answers"]))
    rule = next((rule for rule in READINGS.values() if all(
        answer == rule(sequence[:t]) for sequence, answers in answered for t, answer in enumerate(answers, start=1))),
        None)
    if rule is None:  # named against the grader's reading, the first prefix it answers otherwise
        sequence, t, answer = next((sequence, t, answer) for sequence, answers in answered
                                   for t, answer in enumerate(answers, start=1) if answer != stops(sequence[:t]))
        shown = ", ".join(f"{v:g}" for v in sequence[:t])
        raise CheckFailed(f"`early_stopping([{shown}], patience=3)` returned {answer}: after {t} epochs it should "
                          f"{'stop' if stops(sequence[:t]) else 'go on'} (stop when 3 epochs in a row do not improve "
                          "on the best validation accuracy so far; not rising above the epoch before, 3 times in a "
                          "row, is accepted too, but its answers follow neither rule)")
    recorded = found["recorded"]
    if recorded is None:
        raise CheckFailed("after `fit`, `model.history['val_accuracy']` should list the validation accuracy of each "
                          "epoch")
    want = next((t for t in range(1, epochs + 1) if t <= len(recorded) and rule(recorded[:t])), epochs)
    if len(recorded) != want:
        raise CheckFailed(f"`YourModel(num_blocks=2, use_skip=False, learning_rate=0).fit(..., epochs={epochs})` ran "
                          f"{len(recorded)} epochs with validation accuracies "
                          f"{', '.join(f'{v:.3g}' for v in recorded)}: early stopping with patience 3 should have "
                          f"stopped it after {want}")


# 3.9: the robust model, saved and measured with the grader's attacks


def _attacked(data, given):
    images, labels = _stl10(data, "test")
    count = min(given["robust_count"], len(labels))
    return _pictures(images[:count]), labels[:count]


HOLD_PROBE = '''
def probe(name, expression):
    get_ipython().user_ns[name] = eval(expression, get_ipython().user_ns)
    return True
'''
HELD = "_grader_robust_model"


@pytest.mark.item("3.9a")
def test_robust_model(nb, data, given, measure):
    saved = saved_file(nb, "ROBUST_MODEL_PATH", folder="models")
    expect_loadable(nb, "load_robust_model", "ROBUST_MODEL_PATH")
    images, labels = _attacked(data, given)
    options = {"budget": given["budget_s"], "classes": 10, "timeout": 4 * given["budget_s"] + 120}
    # each network attacked in pixels, in front of the way it takes its pictures (centred, standardised...)
    loaded = loaded_expression("load_robust_model", "ROBUST_MODEL_PATH")
    nb.probe(HOLD_PROBE, HELD, loaded)  # the loaded model under a name of the grader's, for the way it takes pictures
    base_way, robust_way = fed_way(nb, data, "best_cnn"), fed_way(nb, data, HELD)
    baseline = attacks.robust_accuracy(nb, "best_cnn", images, labels, fed=base_way.affine, **options)
    found = attacks.robust_accuracy(nb, loaded, images, labels, transfer_from="best_cnn", fed=robust_way.affine,
                                    transfer_fed=base_way.affine, **options)
    detail = ", ".join(f"{kind} {value:.3f}" for kind, value in found.attacked.items())
    if found.clean < given["clean_floor"]:
        raise CheckFailed(f"the robust model classifies {found.clean:.3f} of the test images correctly: below "
                          f"{given['clean_floor']:g}, it has not learned")
    measure(found.worst - baseline.worst,
            note=f"{saved.path}: worst-case robust accuracy {found.worst:.3f} (clean {found.clean:.3f}, {detail}) on "
                 f"{found.count} test images, fed {robust_way.words}; best_cnn's {baseline.worst:.3f} (clean "
                 f"{baseline.clean:.3f})")
