"""Part 2: EMNIST letters. The arrays of 2.1 and 2.2 are compared with the grader's own
reading of the data by a hash of each image (its pixels as 0-255, either orientation: the
emnist package's upright images or torchvision's transposed ones); the networks are read by
their forward pass and measured by the grader with the notebook's own `predict` on the
test images, whose labels the kernel never has."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checking import CheckFailed, as_array, as_dict, as_list, as_number, describe_value
from autograder.checks.inputs import Way, choose_way, class_scores_as
from autograder.checks.layers import expect_table, trace
from autograder.checks.training import outputs as network_outputs
from autograder.checks.training import predict_codes
from autograder.errors import NotDefined, Referred

PIXELS = 784
ROWS_PROBE = '''
def _subject():
    return __NAME__


def probe(weights):
    import numpy as np
    value = _subject()
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim == 0 or array.size == 0:
        return {"shape": list(array.shape), "dtype": str(array.dtype)}
    rows = array.reshape(len(array), -1).astype(np.float64)
    found = {"shape": list(array.shape), "dtype": str(array.dtype), "min": float(rows.min()), "max": float(rows.max())}
    if rows.shape[1] == len(weights):
        # The pixels as 0-255, however scaled (by 255, the handout's, or by 256): the images
        # are recognised whatever the scale; "off_grid" says how far x 255 is from whole numbers.
        scales = [255.0, 256.0] if found["max"] <= 1.0 else [1.0]
        off = [float(np.abs(rows * scale - np.rint(rows * scale)).max()) for scale in scales]
        pixels = np.rint(rows * scales[int(np.argmin(off))])
        found["off_grid"] = off[0]
        found["hashes"] = (np.clip(pixels, 0, 255).astype(np.uint64) * weights).sum(axis=1)
    return found
'''
#: How a network of 2.4-2.6 may take EMNIST images (N x 28 x 28 uint8, as stored): upright
#: (the emnist package's orientation) or as stored (torchvision's), divided by 255, as rows
#: of 784 or as pictures. The template's `predict` takes rows; a network without it is fed
#: the way that fits it best on training images.
ORIENTATIONS = {"upright": ("upright (as the emnist package gives them)", "inputs.transpose(0, 2, 1)"),
                "stored": ("as stored (as torchvision gives them)", "inputs")}
LAYOUTS = (("as rows of 784", "reshape(len(inputs), -1)"), ("as 28 x 28 pictures", "reshape(len(inputs), 28, 28)"),
           ("as 1 x 28 x 28 pictures", "reshape(len(inputs), 1, 28, 28)"))
WAYS = {(turn, laid): Way(f"{words}, divided by 255, {laid}",
                          f"np.ascontiguousarray({expression}).astype('float32').{layout} / 255.0")
        for turn, (words, expression) in ORIENTATIONS.items() for laid, layout in LAYOUTS}
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU"}


def _weights():
    return np.random.default_rng(3181).integers(1, 2**63, PIXELS, dtype=np.uint64) | np.uint64(1)


def _hash(images):
    return (images.reshape(len(images), -1).astype(np.uint64) * _weights()).sum(axis=1)


def source(assignment, data):
    """The grader's copy: hashes of every image in both orientations, the labels as codes."""
    key = "emnist-source"
    cache = source.__dict__.setdefault("cache", {})
    if (key, str(data.source)) not in cache:
        arrays = assignment.dataset("emnist").read(data.source)
        found = {}
        for usage in ("train", "test"):
            stored = arrays[(usage, "images")]  # transposed, as NIST stores them
            found[usage] = {"upright": _hash(stored.transpose(0, 2, 1)), "stored": _hash(stored)}
        labels = arrays[("train", "labels")].astype(np.int64)
        found["codes"] = np.searchsorted(np.unique(labels), labels)
        found["test_codes"] = arrays[("test", "labels")].astype(np.int64) - 1
        cache[(key, str(data.source))] = found
    return cache[(key, str(data.source))]


def rows(nb, name):
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError(name)
    found = nb.probe(ROWS_PROBE.replace("__NAME__", name), _weights())
    if "hashes" not in found:
        raise CheckFailed(f"`{name}` should be an array of images, one row of {PIXELS} pixels each; got shape "
                          f"{tuple(found['shape'])} ({found['dtype']})")
    return found


def orientation(found, want, name):
    """Which orientation ``found``'s rows match in order, or a reason."""
    for way, hashes in want.items():
        if len(found["hashes"]) == len(hashes) and np.array_equal(found["hashes"], hashes):
            return way
    raise CheckFailed(f"`{name}` does not hold the images of the data set, flattened in order "
                      f"({len(found['hashes'])} rows, the data set has {len(next(iter(want.values())))})")


def codes_of(nb, name, length):
    got = as_array(nb.get(name), f"`{name}`")
    if got.ndim == 2 and got.shape[1] > 1:
        raise CheckFailed(f"`{name}` should hold one integer code per image (0-25), got shape {got.shape}: "
                          "one-hot rows are not the ordinal encoding 2.1 asks for")
    got = got.reshape(-1)
    if len(got) != length:
        raise CheckFailed(f"`{name}` should hold {length} labels, got {len(got)}")
    return got


def coding(nb, assignment, data):
    """The notebook's own code of each letter (indexed by the grader's code, a = 0), read from
    `y_train_full` against the grader's labels of the same rows. A notebook that kept the emnist
    package's 1-26 (and gave its networks 27 outputs to match) loses 2.1b for it, and only 2.1b:
    its splits and networks are read in its own codes. The handout's codes where
    `y_train_full` is missing or does not give each letter one whole number of its own."""
    if "coding" in nb.memo:
        return nb.memo["coding"]
    want = source(assignment, data)["codes"]
    found = np.arange(int(want.max()) + 1)
    try:
        got = codes_of(nb, "y_train_full", len(want)).astype(np.float64)
    except (CheckFailed, NotDefined, Referred, TypeError, ValueError):  # 2.1b says why
        got = np.array([np.nan])
    if np.all(np.isfinite(got)) and np.all(got == np.round(got)) and got.min() >= 0 and got.max() < 2 * len(found):
        pairs = np.unique(np.stack([want, got.astype(np.int64)], axis=1), axis=0)
        if len(pairs) == len(found) == len(np.unique(pairs[:, 1])):  # one code per letter, each its own
            found = pairs[:, 1]
    nb.memo["coding"] = found
    return found


def outputs(nb, assignment, data, given):
    """How many outputs the notebook's networks have for its codes: the handout's classes, or
    one more than its highest code (27 for 1-26)."""
    codes = coding(nb, assignment, data)
    return given["classes"] if np.array_equal(codes, np.arange(len(codes))) else int(codes.max()) + 1


def as_letters(codes, coding_):
    """Codes in the notebook's coding as the grader's (-1 for one that is no letter's)."""
    back = np.full(max(int(coding_.max()), int(codes.max(initial=0))) + 1, -1)
    back[coding_] = np.arange(len(coding_))
    return back[codes]


# 2.1


@pytest.mark.item("2.1a")
def test_flattened(nb, assignment, data):
    want = source(assignment, data)
    for name, usage in (("X_train_full", "train"), ("X_test_full", "test")):
        found = rows(nb, name)
        if tuple(found["shape"]) != (len(want[usage]["stored"]), PIXELS):
            raise CheckFailed(f"`{name}` should have shape ({len(want[usage]['stored'])}, {PIXELS}), got "
                              f"{tuple(found['shape'])}")
        orientation(found, want[usage], name)


@pytest.mark.item("2.1b")
def test_label_codes(nb, assignment, data):
    want = source(assignment, data)["codes"]
    got = codes_of(nb, "y_train_full", len(want))
    wrong = int(np.sum(got != want))
    if wrong == len(want) and np.array_equal(got, want + 1):
        raise CheckFailed("`y_train_full` holds the labels as the emnist package gives them, 1-26; 2.1 asks for their "
                          "ordinal codes, 0-25 (a = 0)")
    if wrong:
        first = int(np.argmax(got != want))
        raise CheckFailed(f"`y_train_full` should code the letters 0-25 in order (a = 0); {wrong} of {len(want)} "
                          f"differ, first at row {first}: expected {want[first]}, got {got[first]:g}")


# 2.2


@pytest.mark.item("2.2a")
def test_split(nb, assignment, data):
    want = source(assignment, data)
    full = {way: hashes for way, hashes in want["train"].items()}
    train, valid = rows(nb, "X_train"), rows(nb, "X_valid")
    total = len(want["codes"])
    if abs(len(valid["hashes"]) - round(0.1 * total)) > 1:
        raise CheckFailed(f"`X_valid` should hold 10% of the {total} training images ({round(0.1 * total)}), "
                          f"it holds {len(valid['hashes'])}")
    found = np.concatenate([train["hashes"], valid["hashes"]])
    way = next((w for w, hashes in full.items() if np.array_equal(np.sort(found), np.sort(hashes))), None)
    if way is None:
        raise CheckFailed("`X_train` and `X_valid` together should be the training images, each once (the "
                          "validation images taken from the training set, not the test set)")
    label_of = dict(zip(full[way].tolist(), coding(nb, assignment, data)[want["codes"]].tolist()))
    for name, part in (("y_train", train), ("y_valid", valid)):
        got = codes_of(nb, name, len(part["hashes"]))
        expected = np.array([label_of[h] for h in part["hashes"].tolist()])
        if np.any(got != expected):
            raise CheckFailed(f"`{name}` should hold the label codes of its images in `X_{name[2:]}`; "
                              f"{int(np.sum(got != expected))} of {len(expected)} do not")


@pytest.mark.item("2.2b")
def test_scaled(nb, assignment, data):
    want = source(assignment, data)
    for name in ("X_train", "X_valid", "X_test"):
        found = rows(nb, name)
        if found["min"] < 0 or found["max"] > 1:
            raise CheckFailed(f"`{name}` should be scaled to [0, 1], its values go from {found['min']:g} to "
                              f"{found['max']:g}")
        if found["off_grid"] > 1e-3:
            raise CheckFailed(f"`{name}` should be the pixels divided by 255; times 255 they are off whole numbers "
                              f"by up to {found['off_grid']:.3g}")
    orientation(rows(nb, "X_test"), want["test"], "X_test")


# 2.4 - 2.6: networks


def table(n1, n2, act, classes):
    activation = ACTIVATIONS[act]
    return [f"Linear({PIXELS}, {n1})", activation, f"Linear({n1}, {n2})", activation, f"Linear({n2}, {classes})"]


FREE = ("Flatten", "Unflatten", "Identity", "Dropout", "Softmax", "LogSoftmax")


def expect_network(nb, name, rows_, what):
    expect_table(trace(nb, name, (PIXELS,)), rows_, (PIXELS,), what=what, free=FREE)


def images(assignment, data, usage):
    """The grader's ``usage`` images (N x 28 x 28 uint8, as stored)."""
    return assignment.dataset("emnist").read(data.source)[(usage, "images")]


def measured_accuracy(nb, assignment, data, model, timeout=None):
    """``model``'s accuracy on the test images, whose labels the kernel never has: through the
    notebook's `predict` (the template's) in the orientation of its own `X_test`, or, in a
    notebook without them, by running the network on the images fed the way that fits it
    best on training images; its predictions read in the notebook's codes (``coding``)."""
    labels = source(assignment, data)["test_codes"]
    key = ("test-accuracy", model)
    if key in nb.memo:
        return nb.memo[key]
    codes_of_letters = coding(nb, assignment, data)
    classes = int(codes_of_letters.max()) + 1
    test = images(assignment, data, "test")
    try:
        try:
            turn = orientation(rows(nb, "X_test"), source(assignment, data)["test"], "X_test")
        except CheckFailed:  # X_test is not the test set: 2.2b says so; measure upright
            turn = "upright"
        codes = predict_codes(nb, "predict", model, test, prepare=WAYS[(turn, LAYOUTS[0][0])].expression,
                              count=len(labels), classes=classes, what="the test images", timeout=timeout)
    except (NotDefined, Referred):  # the template's `predict` or `X_test` is not there: the network itself
        way = choose_way(nb, model, images(assignment, data, "train"),
                         codes_of_letters[source(assignment, data)["codes"]], list(WAYS.values()), what="training",
                         classes=classes)
        codes = class_scores_as(nb, model, test, way, what="the test images", classes=classes,
                                timeout=timeout).argmax(axis=1)
    nb.memo[key] = float(np.mean(as_letters(codes, codes_of_letters) == labels))
    return nb.memo[key]


@pytest.mark.item("2.4a")
def test_dnn_table(nb, assignment, data, given):
    expect_network(nb, "dnn", table(20, 40, "relu", outputs(nb, assignment, data, given)), "dnn")


@pytest.mark.item("2.4b")
def test_dnn_accuracy(nb, assignment, data, measure):
    measure(measured_accuracy(nb, assignment, data, "dnn"), note="the test images, labels withheld from the kernel")


def best_params(nb):
    params = as_dict(nb.get("best_params"), "`best_params`", ("n1", "n2", "act"))
    act = params["act"]
    if not isinstance(act, str) or act.lower() not in ACTIVATIONS:
        raise CheckFailed(f"`best_params['act']` should be one of sigmoid, tanh, relu, got {describe_value(act)}")
    return int(as_number(params["n1"], "best_params['n1']")), int(as_number(params["n2"], "best_params['n2']")), \
        act.lower()


def grid(nb, given, *, complete=True):
    found = {}
    for number, row in enumerate(as_list(nb.get("grid_results"), "`grid_results`"), start=1):
        row = as_dict(row, f"row {number} of `grid_results`", ("n1", "n2", "act", "val_accuracy"))
        act = str(row["act"]).lower()
        key = (int(as_number(row["n1"], "n1")), int(as_number(row["n2"], "n2")), act)
        found[key] = as_number(row["val_accuracy"], f"row {number}'s val_accuracy")
    want = {(n1, n2, act) for n1 in given["n1"] for n2 in given["n2"] for act in given["act"]}
    missing = sorted(want - set(found))
    if missing and complete:
        listed = ", ".join(f"n1={a} n2={b} {c}" for a, b, c in missing)
        raise CheckFailed(f"`grid_results` should cover the {len(want)} settings of the grid; missing: {listed}")
    return found


@pytest.mark.item("2.5a")
def test_grid(nb, given):
    found = grid(nb, given)
    chosen = best_params(nb)
    top = max(found.values())
    if found.get(chosen, -1.0) < top:
        raise CheckFailed(f"`best_params` {chosen} has validation accuracy {found.get(chosen, float('nan')):.4g} in "
                          f"`grid_results`; the best there is {top:.4g}")


@pytest.mark.item("2.5b")
def test_best_model(nb, assignment, data, given, measure):
    n1, n2, act = best_params(nb)
    classes = outputs(nb, assignment, data, given)
    expect_network(nb, "best_model", table(n1, n2, act, classes), "best_model")
    reported = grid(nb, given, complete=False).get((n1, n2, act))
    y_valid = as_array(nb.get("y_valid"), "`y_valid`").reshape(-1)
    how = "with `predict`"
    try:
        codes = predict_codes(nb, "predict", "best_model", "X_valid", count=len(y_valid), classes=classes,
                              what="`X_valid`")
    except (NotDefined, Referred):  # no `predict` of the template's: the network itself, on X_valid as it is
        how = "running it on `X_valid`"
        scores = network_outputs(nb, "best_model", "X_valid", what="`X_valid`")
        if scores.shape != (len(y_valid), classes):
            raise CheckFailed(f"`best_model` on `X_valid` should give {classes} scores per row for its "
                              f"{len(y_valid)} rows; it gave shape {scores.shape}") from None
        codes = scores.argmax(axis=1)
    measured = float(np.mean(codes == y_valid))
    # trained further after the search (or retrained on more data) it may do better than the
    # grid reported; worse, it is not the model the grid measured
    if reported is None or measured < reported - given["slack"]:
        raise CheckFailed(f"`best_model` scores {measured:.4f} on (X_valid, y_valid) as the grader measures it {how}; "
                          f"`grid_results` reports {reported} for its setting")
    measure(measured_accuracy(nb, assignment, data, "best_model"), name="test accuracy (for the marker)",
            note="the test images, labels withheld from the kernel")


LS_PROBE = '''
def _subject():
    return label_smoothing_loss


def _with_tensorflow(function, logits, targets, alpha, scores, labels, order):
    """The same way with TensorFlow tensors (the handout's framework), the gradient by a tape."""
    import numpy as np
    import tensorflow as tf
    x = tf.Variable(np.asarray(logits, dtype=np.float64))
    with tf.GradientTape() as tape:
        fed = x if scores == "logits" else tf.nn.softmax(x, axis=1)
        y = tf.constant(np.asarray(targets, dtype=np.int64))
        y = y if labels == "classes" else tf.one_hot(y, x.shape[1], dtype=tf.float64)
        loss = function(fed, y, alpha) if order == "scores first" else function(y, fed, alpha)
    grad = tape.gradient(loss, x)
    return {"loss": np.asarray(loss, dtype=np.float64), "grad": None if grad is None else grad.numpy()}


def probe(logits, targets, alpha):
    """label_smoothing_loss called each way a student may write it: on logits or on the
    softmax's probabilities (a network ending in softmax), targets as classes or one-hot,
    in either order; for each, the loss and its gradient with respect to the logits, or
    the error it raised. A way that fails on torch tensors is tried on TensorFlow's where
    the notebook imported TensorFlow."""
    import sys
    import torch
    import torch.nn.functional as F
    function = _subject()
    found = []
    for scores in ("logits", "probabilities"):
        for labels in ("classes", "one-hot"):
            for order in ("scores first", "targets first"):
                x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
                fed = x if scores == "logits" else torch.softmax(x, dim=1)
                y = torch.tensor(targets, dtype=torch.int64)
                y = y if labels == "classes" else F.one_hot(y, x.shape[1]).to(x.dtype)
                way = f"on {scores}, targets as {labels}, {order}"
                try:
                    loss = function(fed, y, alpha) if order == "scores first" else function(y, fed, alpha)
                    loss = torch.as_tensor(loss)
                    if loss.requires_grad:
                        loss.backward()
                    found.append({"way": way, "loss": loss.detach().double().numpy(),
                                  "grad": x.grad.numpy() if x.grad is not None else None})
                except Exception as error:
                    failed = {"way": way, "error": f"{type(error).__name__}: {error}"[:300]}
                    if "tensorflow" in sys.modules:
                        try:
                            failed = {"way": way, **_with_tensorflow(function, logits, targets, alpha, scores,
                                                                     labels, order)}
                        except Exception:
                            pass
                    found.append(failed)
    return found
'''


def _smoothing_losses(nb, logits, targets, alpha):
    """What label_smoothing_loss gave each way it ran (``LS_PROBE``), or the reason none did."""
    found = [as_dict(entry, "label_smoothing_loss's result", ("way",))
             for entry in as_list(nb.probe(LS_PROBE, logits, targets, alpha), "what label_smoothing_loss returned")]
    ran = [entry for entry in found if "error" not in entry]
    if not ran:
        raise CheckFailed("`label_smoothing_loss(logits, targets, alpha)` raised each way the grader called it (on "
                          f"logits or probabilities, targets as classes or one-hot, either order): {found[0]['error']}")
    return ran


@pytest.mark.item("2.6a")
def test_label_smoothing_loss(nb, given):
    """The loss on the grader's logits, value and gradient, in any of the ways students write
    it (``LS_PROBE``), averaged or summed over the batch: the first way whose value is the
    reference's is judged; where none is, the first way that ran is named."""
    rng = np.random.default_rng(2026)
    for alpha in given["alphas"]:
        logits, targets = rng.normal(0, 3, (64, 26)), rng.integers(0, 26, 64)
        x = torch.tensor(logits, requires_grad=True)
        want = F.cross_entropy(x, torch.tensor(targets), label_smoothing=alpha)
        (slope,) = torch.autograd.grad(want, x)
        ran = _smoothing_losses(nb, logits, targets, alpha)
        what = f"label_smoothing_loss(logits, targets, {alpha}) on the grader's 64 x 26 logits"
        matched = next(((entry, scale) for entry in ran for scale in (1, len(targets))
                        if abs(as_number(entry["loss"], what) - scale * want.item())
                        <= 1e-5 * abs(scale * want.item()) + 1e-6), None)
        if matched is None:
            value = as_number(ran[0]["loss"], what)
            raise CheckFailed(f"{what} ({ran[0]['way']}): expected {want.item():.6g} (the cross-entropy against "
                              f"(1 - alpha) one-hot + alpha / K, averaged over the batch; summed is accepted too), "
                              f"got {value:.6g}")
        entry, scale = matched
        if entry["grad"] is None:
            raise CheckFailed(f"{what}: the loss does not reach the logits (no gradient)")
        grad = as_array(entry["grad"], f"the gradient of {what}", shape=slope.shape)
        if not np.allclose(grad, scale * slope.numpy(), rtol=1e-4, atol=1e-7):
            raise CheckFailed(f"{what} ({entry['way']}): its gradient with respect to the logits differs from the "
                              "reference's")


#: The framework's own smoothing: a built-in cross-entropy given ``label_smoothing=`` (a keyword
#: of the student's own functions, say train(..., label_smoothing=alpha), is not).
BUILT_IN = re.compile(r"(cross_entropy|CrossEntropyLoss|CategoricalCrossentropy|categorical_crossentropy)\s*\("
                      r"[^()]*(\([^()]*\)[^()]*)*label_smoothing\s*=")


@pytest.mark.item("2.6b")
def test_no_built_in(nb):
    ran = _smoothing_losses(nb, np.zeros((2, 26)), np.array([0, 1]), 0.1)
    if not np.isfinite(as_number(ran[0].get("loss"), "label_smoothing_loss(...)")):
        raise CheckFailed("label_smoothing_loss should compute a loss first (2.6b credits a smoothing of your own)")
    cells = nb.run.defining("label_smoothing_loss") + nb.run.defining("ls_models")
    for cell in cells:
        if BUILT_IN.search(cell.source):
            raise CheckFailed(f"{cell.label} uses the framework's built-in smoothing (`label_smoothing=` given to its "
                              "cross-entropy); 2.6 asks for your own")


BIND_PROBE = '''
def _subject():
    return ls_models


def probe(name):
    found = _subject()
    if not isinstance(found, dict):
        return {"not_dict": type(found).__module__ + "." + type(found).__qualname__}
    for index, model in enumerate(found.values()):  # each a name of its own, for the layer probe
        get_ipython().user_ns[f"{name}_{index}"] = model
    return {"keys": [float(key) if isinstance(key, (int, float)) else str(key) for key in found]}
'''
BOUND = "_grader_ls_models"


@pytest.mark.item("2.6c")
def test_ls_models(nb, assignment, data, given, measure):
    found = nb.probe(BIND_PROBE, BOUND)
    if "not_dict" in found:
        raise CheckFailed(f"`ls_models` should be a dict from alpha to the trained network, got a {found['not_dict']}")
    keys = found["keys"]
    n1, n2, act = best_params(nb)
    for alpha in given["models"]:
        index = next((i for i, key in enumerate(keys) if isinstance(key, float) and abs(key - alpha) < 1e-9), None)
        if index is None:
            raise CheckFailed(f"`ls_models` has no model for alpha {alpha} (its keys: {keys})")
        name = f"{BOUND}_{index}"
        expect_network(nb, name, table(n1, n2, act, outputs(nb, assignment, data, given)), f"ls_models[{alpha}]")
        score = measure(measured_accuracy(nb, assignment, data, name), name=f"test accuracy, alpha {alpha}",
                        note="the test images, labels withheld from the kernel")
        if score < given["learned"]:
            raise CheckFailed(f"`ls_models[{alpha}]` scores {score:.3f} on the test images: it has not learned "
                              f"(at least {given['learned']} expected; chance is 1/26)")
