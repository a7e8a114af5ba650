"""Question 1: the linear autoencoders on faces, the eigenfaces and the zeroed pixels.

Reconstruction is measured on the faces the kernel never had, against what the grader's
own PCA with n components (fitted on the faces the kernel had) explains of them: the best
rank-n reconstruction, which bounds any 4096 → n → 4096 network. The faces are fed to the
network the way it rebuilds the faces the kernel had best (in [0, 1] or 0 to 255, minus
the mean face or not, flat or as 64 x 64 pictures: ``checks.inputs``), since students
prepare them in all these ways; no helper of the notebook's is needed."""

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array, as_number, describe_value
from autograder.checks.inputs import choose_reconstruction, reconstruct, reconstruction_ways
from autograder.checks.layers import expect_table, trace_any
from autograder.errors import NotDefined, Referred, StudentRaised

DATASET = "hw2-q1"
SHAPES = [(4096,), (1, 64, 64), (64, 64)]  # a face, as the networks of students take it
WAYS = reconstruction_ways((1, 64, 64)) + reconstruction_ways((64, 64))[3:]

SNAPSHOTS_PROBE = '''
def _subjects():
    return __MODEL__, fc1_snapshots


def probe(n):
    import numpy as np
    from torch import nn
    model, snapshots = _subjects()
    if not isinstance(snapshots, dict):
        return {"problem": "should be a dict with the keys 16 and 64", "type": type(snapshots).__name__}
    found = snapshots.get(n, snapshots.get(str(n)))
    if found is None:
        return {"problem": f"has no entry for n = {n}", "keys": [str(k) for k in snapshots]}
    pairs = sorted(found.items()) if isinstance(found, dict) else list(found)
    epochs, shapes = [], []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            return {"problem": f"[{n}] should hold (epoch, weights) pairs, holds a {type(pair).__name__}"}
        epochs.append(pair[0])
        shapes.append(list(np.shape(np.asarray(pair[1].detach().cpu() if hasattr(pair[1], "detach") else pair[1]))))
    fc1 = getattr(model, "fc1", None)
    if not isinstance(fc1, nn.Linear):
        fc1 = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    def array(value):
        return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float32)
    return {"epochs": epochs, "shapes": shapes, "first": array(pairs[0][1]) if pairs else None,
            "last": array(pairs[-1][1]) if pairs else None,
            "weight": array(fc1.weight) if fc1 is not None else None}
'''

CRITERION_PROBE = '''
def probe(prediction, target):
    import torch
    return criterion(torch.tensor(prediction), torch.tensor(target))
'''

DECODER_PROBE = '''
def _subject():
    return __MODEL__


def probe():
    from torch import nn
    model = _subject()
    fc2 = getattr(model, "fc2", None)
    if not isinstance(fc2, nn.Linear):
        linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
        fc2 = linear[-1] if linear else None
    return fc2.weight.detach().cpu().float() if fc2 is not None else None
'''


def table(n):
    return [f"Linear(4096, {n})", "ReLU", f"Linear({n}, 4096)"]


@pytest.mark.item("1.1a")
def test_architecture_and_loss(nb, given):
    for name, n in given["models"].items():
        expect_table(trace_any(nb, name, SHAPES), table(n), (4096,), what=name)
    rng = np.random.default_rng(4179)
    prediction, target = rng.random((4, 4096)).astype(np.float32), rng.random((4, 4096)).astype(np.float32)
    try:
        found = nb.probe(CRITERION_PROBE, prediction, target)
    except (NotDefined, Referred) as missing:  # the loss lives inside a training function
        raise Referred(f"both networks are as the handout's table (measured); the loss they were trained with is "
                       f"not a name of the notebook ({missing}): a marker checks it is the squared error") from None
    got = as_number(found, "criterion(prediction, target)")
    squared = (prediction.astype(np.float64) - target) ** 2
    forms = {"the mean squared error (nn.MSELoss)": squared.mean(), "the summed squared error": squared.sum(),
             "the squared error summed per face and averaged": squared.sum(axis=1).mean()}
    if not any(abs(got - want) <= 1e-4 * abs(want) for want in forms.values()):
        raise CheckFailed(f"criterion should be the squared error ‖x − x̂‖² (nn.MSELoss, or its sum): on the "
                          f"grader's images it gives {got:.6g}, the mean squared error is {squared.mean():.6g}")


def _snapshots(nb, name, n):
    found = nb.probe(SNAPSHOTS_PROBE.replace("__MODEL__", name), n)
    if "problem" in found:
        raise CheckFailed(f"fc1_snapshots {found['problem']}")
    epochs = [as_number(e, f"an epoch of fc1_snapshots[{n}]") for e in found["epochs"]]
    if len(epochs) < 3:
        raise CheckFailed(f"fc1_snapshots[{n}] holds {len(epochs)} snapshots; store fc1's weights at regular "
                          "intervals from epoch 0 to the last epoch (at least 3)")
    if epochs[0] != 0:
        raise CheckFailed(f"fc1_snapshots[{n}] starts at epoch {epochs[0]:g}; the first snapshot is the random "
                          "initialisation, epoch 0")
    steps = np.diff(epochs)
    if np.any(steps <= 0) or np.any(steps[:-1] != steps[0]) or steps[-1] > steps[0]:
        raise CheckFailed(f"fc1_snapshots[{n}] is stored at epochs {[int(e) for e in epochs]}: not at regular "
                          "intervals (only the last may be shorter)")
    for epoch, shape in zip(epochs, found["shapes"]):
        if tuple(shape) != (n, 64, 64):
            raise CheckFailed(f"the snapshot of epoch {epoch:g} in fc1_snapshots[{n}] has shape {tuple(shape)}; "
                              f"each of fc1's {n} units should be a 64 x 64 image: ({n}, 64, 64)")
    return found


@pytest.mark.item("1.1b")
def test_weight_snapshots(nb, given):
    for name, n in given["models"].items():
        found = _snapshots(nb, name, n)
        first = as_array(found["first"], f"the first snapshot of fc1_snapshots[{n}]", shape=(n, 64, 64))
        last = as_array(found["last"], f"the last snapshot of fc1_snapshots[{n}]", shape=(n, 64, 64))
        if found["weight"] is None:
            raise CheckFailed(f"`{name}` has no Linear layer fc1")
        weight = as_array(found["weight"], f"{name}.fc1.weight", shape=(n, 4096)).reshape(n, 64, 64)
        if np.allclose(first, last, atol=1e-7):
            raise CheckFailed(f"the first and last snapshots of fc1_snapshots[{n}] are the same: were the weights "
                              "stored as references to the live tensor (store a copy)?")
        if not np.allclose(last, weight, atol=1e-5, rtol=1e-4):
            raise CheckFailed(f"the last snapshot of fc1_snapshots[{n}] should be the trained {name}.fc1.weight, "
                              "each unit (a row of fc1.weight) as a 64 x 64 image; it is not")


def _pca_error(visible, held, n):
    mean = visible.mean(axis=0)
    _, _, vt = np.linalg.svd(visible - mean, full_matrices=False)
    basis = vt[:n].T
    rebuilt = (held - mean) @ basis @ basis.T + mean
    return float(np.mean((rebuilt - held) ** 2)), float(np.mean((held - mean) ** 2)), basis


def _faces(assignment, data):
    dataset = assignment.dataset(DATASET)
    visible = dataset.visible(data.source)["faces"].reshape(-1, 4096).astype(np.float64) / 255.0
    held = dataset.heldout(data.source)["faces"].reshape(-1, 4096).astype(np.float64) / 255.0
    return visible, held


def _reconstruct(nb, model, images, visible):
    """``model``'s reconstructions of ``images`` in [0, 1], fed as it rebuilds visible faces best."""
    way = choose_reconstruction(nb, model, visible, WAYS)
    return reconstruct(nb, model, images, way, visible.mean(axis=0)), way


@pytest.mark.item("1.1c-16")
def test_reconstruction_16(nb, assignment, data, given, measure):
    _measure_reconstruction(nb, assignment, data, given, measure)


@pytest.mark.item("1.1c-64")
def test_reconstruction_64(nb, assignment, data, given, measure):
    visible, held, basis = _measure_reconstruction(nb, assignment, data, given, measure)
    # For the marker (0 points): 1.2b, how close the decoder's span is to the top eigenfaces
    # (where fc2 is what the handout says); 1.3b, what the network does with zeroed pixels
    # (the grader's own mask).
    decoder = nb.probe(DECODER_PROBE.replace("__MODEL__", given["model"]))
    if decoder is not None and np.shape(decoder) == (4096, given["n"]):
        q, _ = np.linalg.qr(as_array(decoder, "fc2's weights").astype(np.float64))
        cosines = np.linalg.svd(basis.T @ q, compute_uv=False)
        measure(float(cosines.mean()), name="decoder span vs eigenfaces (mean cosine, for 1.2b)")
    rng = np.random.default_rng(2021)
    damaged = np.where(rng.random(held.shape) < given["zeroed"], 0.0, held)
    rebuilt, _ = _reconstruct(nb, given["model"], damaged, visible)
    measure(float(np.mean((damaged - held) ** 2)), name=f"MSE with {given['zeroed']:.0%} zeroed (for 1.3b)")
    measure(float(np.mean((rebuilt - held) ** 2)), name="MSE of its reconstruction (for 1.3b)")


def _measure_reconstruction(nb, assignment, data, given, measure):
    visible, held = _faces(assignment, data)
    pca, baseline, basis = _pca_error(visible, held, given["n"])
    rebuilt, way = _reconstruct(nb, given["model"], held, visible)
    error = float(np.mean((rebuilt - held) ** 2))
    explained = (baseline - error) / (baseline - pca)
    measure(explained, note=f"MSE {error:.5f} on {len(held)} held-out faces fed {way.words}; PCA with "
                            f"{given['n']} components {pca:.5f}, the mean face {baseline:.5f}")
    return visible, held, basis


def _eigenfaces_problem(nb, X, n, want, tolerance, *, rows):
    """What is wrong with eigenfaces(X, n) (X a face per column, or per row), or None."""
    given = X.T if rows else X
    shown = f"eigenfaces(X, {n}) for X of shape {given.shape}"
    got = as_array(nb.call("eigenfaces", given, n), shown, shape=want.shape, transposed=True).astype(np.float64)
    norms = np.linalg.norm(got, axis=0)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        return f"{shown} returned a column of zeros or of non-numbers"
    cosines = np.abs(np.sum(got * want, axis=0)) / norms
    for k, cos in enumerate(cosines):
        if cos < 1 - tolerance.abs:
            return (f"eigenface {k + 1} of {shown} is not the grader's (|cos| {cos:.4f}): the left singular "
                    "vectors of the faces minus their mean face, ordered by singular value, up to sign")
    return None


@pytest.mark.item("1.2a")
def test_eigenfaces(nb, assignment, tolerance):
    """The handout stores a face per column (4096 x N); a function written for a face per row
    is as right, so both are tried."""
    datagen = assignment.module("datagen")
    for seed, n in ((11, 4), (12, 8)):
        X = datagen.face_matrix(seed)
        u, _, _ = np.linalg.svd(X - X.mean(axis=1, keepdims=True), full_matrices=False)
        want = u[:, :n]
        try:
            problem = _eigenfaces_problem(nb, X, n, want, tolerance, rows=False)
        except (CheckFailed, StudentRaised) as error:
            problem, first = str(error), error
        else:
            first = None
        if problem is None:
            continue
        try:
            if _eigenfaces_problem(nb, X, n, want, tolerance, rows=True) is None:
                continue
        except (CheckFailed, StudentRaised):
            pass
        if first is not None:
            raise first
        raise CheckFailed(problem)


@pytest.mark.item("1.3a")
def test_zero_pixels(nb, assignment, tolerance):
    images = assignment.module("datagen").positive_images(7)
    for fraction in (0.1, 0.3, 0.5):
        got = nb.call("zero_pixels", images, fraction)
        out = as_array(got, f"zero_pixels(images, {fraction})")
        if out.size != images.size:
            raise CheckFailed(f"zero_pixels(images, {fraction}) should return images of shape {images.shape}, "
                              f"got {describe_value(got)}")
        out = out.reshape(images.shape).astype(np.float64)
        zeroed = out == 0
        share = zeroed.mean(axis=1)
        worst = int(np.argmax(np.abs(share - fraction)))
        if abs(share[worst] - fraction) > tolerance.abs:
            raise CheckFailed(f"zero_pixels(images, {fraction}) zeroed {share[worst]:.1%} of image {worst}'s pixels; "
                              f"it should zero {fraction:.0%} of each image ({tolerance.describe()})")
        if not np.allclose(out[~zeroed], images[~zeroed], atol=1e-6, rtol=1e-6):
            raise CheckFailed(f"zero_pixels(images, {fraction}) changed pixels it did not zero; the others "
                              "should stay as they are")
    first, second = (as_array(nb.call("zero_pixels", images, 0.3), "zero_pixels(images, 0.3)").reshape(images.shape)
                     for _ in range(2))
    if np.array_equal(first == 0, second == 0):
        raise CheckFailed("two calls of zero_pixels(images, 0.3) zeroed the same pixels; they should be "
                          "chosen at random")
