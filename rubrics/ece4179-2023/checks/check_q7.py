"""Question 7: face landmarks with a frozen ViT. The backbone's weights must need no
gradient and be bit for bit those of the pretrained model it was loaded from (hashes
compared here, on the grader's side, with the course's files themselves: a ``.pth`` of
``weights/`` or a Hugging Face repository, whichever the model holds); the head gives 136
numbers; the landmark MSE in pixels is measured on test images whose landmarks the kernel
never had.

The template's ``image_transform`` (one image to a tensor) and ``to_pixels`` (outputs to
landmarks in pixels) are used where the notebook has them. A notebook of another starter
prepares its images and scales its targets its own way: the grader then feeds the model
the test images in the way, and reads its outputs in the scale, that fit best on training
images (whose landmarks the kernel has), and says so."""

import hashlib
from pathlib import PurePosixPath

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array
from autograder.checks.inputs import outputs_as, outputs_by_way, picture_ways, sample
from autograder.data import landmarks, weights
from autograder.errors import NotDefined, Referred

FINGERPRINTS_PROBE = '''
def probe():
    import hashlib
    out = []
    for name, parameter in model.named_parameters():
        values = parameter.detach().float().cpu().contiguous().numpy()
        out.append({"name": name, "shape": list(values.shape), "requires_grad": bool(parameter.requires_grad),
                    "sha256": hashlib.sha256(values.tobytes()).hexdigest(), "sum": float(values.sum(dtype="float64"))})
    return out
'''

PREDICT_PROBE = '''
def probe(npz_path, count, batch_size):
    import numpy as np
    import torch
    with np.load(npz_path) as stored:
        images = stored["test_images"][:count]
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([image_transform(image) for image in images[start:start + batch_size]])
            out.append(np.asarray(to_pixels(model(batch.to(device)))))
    model.train(training)
    return np.concatenate(out)
'''

OUTPUTS_PROBE = '''
def probe(npz_path):
    import numpy as np
    import torch
    with np.load(npz_path) as stored:
        image = stored["test_images"][0]
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    with torch.no_grad():
        shape = list(model(image_transform(image)[None].to(device)).shape)
    model.train(training)
    return shape
'''


#: Tensors of a pretrained model that are not its backbone: the heads students replace
#: (torchvision's ``heads``, Hugging Face's ``classifier``) and the pooler a head may skip.
HEAD_PREFIXES = ("heads.", "head.", "classifier.", "pooler.", "vit.pooler.", "fc.")


def backbone_of(state):
    """The backbone tensors of a pretrained state: not a head, and not constant (constants match anything)."""
    return {key: tensor.float().contiguous() for key, tensor in state.items()
            if not key.startswith(HEAD_PREFIXES) and tensor.numel() > 1 and tensor.std() > 0}


def _distance(backbone, found):
    """How far ``model``'s tensors are from ``backbone``'s, tensor by tensor (a backbone trained
    further stays closest to the one it started from): the sum over its tensors of the
    relative difference of the sums of values, to the nearest tensor of ``model`` of that shape."""
    total = 0.0
    for tensor in backbone.values():
        scale = float(tensor.abs().sum()) + 1e-12
        near = [abs(f["sum"] - float(tensor.double().sum())) / scale for f in found if tuple(f["shape"]) == tuple(
            tensor.shape)]
        total += min(near, default=1.0)
    return total


def pretrained(data, parameters, given, found):
    """The pretrained model ``model`` was loaded from, and hashes of its backbone tensors:
    of the course's files, the one most of whose backbone is in ``model`` unchanged; where
    none is (a backbone trained further), the one whose tensor shapes ``model`` has most of,
    and of those the nearest; the file the notebook was told to load first among equals."""
    named = PurePosixPath(str(parameters.get("VIT_WEIGHTS", given["weights_file"]))).name
    names = sorted(weights.provided(data.source), key=lambda name: name != named)
    digests = {f["sha256"] for f in found}
    shapes = [tuple(f["shape"]) for f in found]
    best = None
    for name in names:
        backbone = backbone_of(weights.load_state(data.source, name))
        hashes = {key: hashlib.sha256(tensor.numpy().tobytes()).hexdigest() for key, tensor in backbone.items()}
        fit = (sum(digest in digests for digest in hashes.values()),
               sum(tuple(tensor.shape) in shapes for tensor in backbone.values()), -_distance(backbone, found))
        if best is None or fit > best[0]:
            best = (fit, name, hashes)
    if best is None:
        raise CheckFailed("the course's folder holds no pretrained weights to compare the backbone with")
    return best[1], best[2]


@pytest.mark.item("7.2")
def test_backbone_frozen_and_unchanged(nb, data, parameters, given):
    found = nb.probe(FINGERPRINTS_PROBE)
    name, backbone = pretrained(data, parameters, given, found)
    changed, trainable = [], []
    for key, digest in backbone.items():
        matches = [f for f in found if f["sha256"] == digest]
        if not matches:
            changed.append(key)
        elif any(f["requires_grad"] for f in matches):
            trainable.append(key)
    if changed:
        raise CheckFailed(
            f"{len(changed)} of {len(backbone)} backbone tensors of {name} are not in model unchanged "
            f"(first: {changed[0]}): the backbone was trained or replaced"
        )
    if trainable:
        raise CheckFailed(f"{len(trainable)} backbone tensors still require gradients (first: {trainable[0]})")


def readings(train_landmarks):
    """Ways students scale and lay out the 136 numbers a model learns, each as (words, the
    function from outputs (N x 136) to landmarks in pixels (N x 68 x 2)): in pixels, divided
    by the image size (centred on 0.5 or not, or in [-1, 1]), or standardised by the
    training landmarks' mean and std (per number or overall); (x, y) pairs or all x then all y."""
    size = float(landmarks.SIZE)
    layouts = [("as (x, y) pairs", lambda points: points.reshape(len(points), -1),
                lambda flat: flat.reshape(len(flat), landmarks.POINTS, 2)),
               ("as all x then all y", lambda points: points.transpose(0, 2, 1).reshape(len(points), -1),
                lambda flat: flat.reshape(len(flat), 2, landmarks.POINTS).transpose(0, 2, 1))]
    found = []
    for laid, flatten, unflatten in layouts:
        flat = flatten(train_landmarks)
        mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-8
        scales = [("in pixels", lambda y: y),
                  (f"divided by {size:g}", lambda y: y * size),
                  (f"divided by {size:g} and centred on 0.5", lambda y: (y + 0.5) * size),
                  ("scaled to [-1, 1]", lambda y: (y + 1.0) * size / 2),
                  ("standardised by the training landmarks' mean and std, number by number",
                   lambda y, mean=mean, std=std: y * std + mean),
                  ("standardised by the training landmarks' overall mean and std",
                   lambda y, mean=flat.mean(), std=flat.std(): y * std + mean)]
        found += [(f"{scaled}, {laid}", lambda y, scale=scale, unflatten=unflatten: unflatten(scale(y)))
                  for scaled, scale in scales]
    return found


#: Readings whose MSE on the training images is within this factor of the best one's fit
#: about as well: a network trained to the end fits one reading far better than the others.
CLOSE = 2.0


def fitted(nb, data):
    """Each way ``model`` takes images with each reading of its outputs, as (MSE in pixels on
    a sample of training images, way, words, reading), best first, those that fit about as
    well as the best (within ``CLOSE`` of it) only."""
    key = ("landmark-way",)
    if key in nb.memo:
        return nb.memo[key]
    with np.load(data.source / landmarks.FILE) as stored:
        images, points = sample(stored["train_images"]), stored["train_landmarks"].astype(np.float64)
    points = points[:len(images)]
    mean = (images.reshape(-1, 3).mean(axis=0) / 255.0).tolist()
    std = (images.reshape(-1, 3).std(axis=0) / 255.0).tolist()
    fits, last = [], ""
    for way, out in zip(ways := picture_ways(mean=mean, std=std), outputs_by_way(nb, "model", images, ways)):
        if isinstance(out, str):
            last = out
            continue
        if out.size != len(images) * 2 * landmarks.POINTS:
            last = f"`model` gave outputs of shape {out.shape} for {len(images)} images, not 136 numbers each"
            continue
        for words, reading in readings(points):
            error = float(np.mean((reading(out.reshape(len(images), -1)) - points) ** 2))
            if np.isfinite(error):
                fits.append((error, way, words, reading))
    if not fits:
        raise CheckFailed(f"`model` could not be run on the face images in any of the ways students feed them: {last}")
    fits.sort(key=lambda fit: fit[0])
    nb.memo[key] = [fit for fit in fits if fit[0] <= CLOSE * fits[0][0]]
    return nb.memo[key]


@pytest.mark.item("7.3")
def test_head_gives_136_numbers(nb, data):
    try:
        shape = nb.probe(OUTPUTS_PROBE, str(data.view / landmarks.FILE))
    except (NotDefined, Referred):  # no `image_transform`: one image fed the way that fits best
        with np.load(data.source / landmarks.FILE) as stored:
            image = stored["test_images"][:1]
        shape = outputs_as(nb, "model", image, fitted(nb, data)[0][1], what="one test image").shape
    if int(np.prod(shape)) != 136:
        raise CheckFailed(f"model should give 136 numbers (68 landmarks) per image, gave shape {tuple(shape)} for one")


@pytest.mark.item("7.4")
def test_landmark_error(nb, data, given, measure, rubric_item):
    truth = landmarks.heldout(data.source)
    try:
        predicted = nb.probe(PREDICT_PROBE, str(data.view / landmarks.FILE), len(truth), 64,
                             timeout=given["probe_timeout_s"])
    except (NotDefined, Referred):  # the notebook's own preparation is not the template's: the ones that fit
        value, note = fitted_error(nb, data, truth, given, rubric_item)
        measure(value, note=note)
        return
    predicted = as_array(predicted, "to_pixels(model(...)) on the test images", shape=truth.shape)
    measure(float(np.mean((predicted - truth) ** 2)), note=f"{len(truth)} test images")


def fitted_error(nb, data, truth, given, rubric_item):
    """The test MSE of ``model`` fed and read the way that fits the training images best, and
    its note. Where other ways fit about as well (a network not trained to the end) and give
    another band of points, the reading is the notebook's to say, and a marker's to read."""
    with np.load(data.source / landmarks.FILE) as stored:
        images = stored["test_images"]
    errors, runs = [], {}
    for error, way, words, reading in fitted(nb, data):
        if way not in runs:
            runs[way] = outputs_as(nb, "model", images, way, what="the test images", timeout=given["probe_timeout_s"])
        out = runs[way]
        if out.size != len(images) * 2 * landmarks.POINTS:
            raise CheckFailed(f"`model` gave outputs of shape {out.shape} for {len(images)} test images, "
                              "not 136 numbers each")
        predicted = reading(out.reshape(len(images), -1))
        errors.append((float(np.mean((predicted - truth) ** 2)), error, f"{way.words}; outputs read {words}"))
    bands = {rubric_item.metric.fraction_for(test, None)[0] for test, _, _ in errors}
    if len(bands) > 1:
        shown = "; ".join(f"{test:.0f} px² ({train:.0f} on training images) fed {words}"
                          for test, train, words in errors[:3])
        more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
        raise Referred(f"the notebook has no image_transform and to_pixels of the template's, and its model fits the "
                       "training images about as well read more than one way, which give different points: "
                       f"{shown}{more}. A marker reads the notebook's own conversion to pixels")
    test, train, words = errors[0]
    return test, (f"{len(truth)} test images, {words} (these fit the training images best: MSE "
                              f"{train:.1f} px² there; the notebook has no image_transform and to_pixels of the "
                              "template's)")
