"""How a student's model takes its inputs, found by measuring, not by asking the notebook.

A course's starter loads its data one way, its students another: images divided by 255 or
not, centred on 0.5, standardised by the training set's mean, flat rows or 1 x 28 x 28
pictures, faces minus the mean face. A trained model only works on inputs made the way it
was trained on, and a grader that feeds it another way measures nothing but the mismatch.
So the grader runs the model on a sample of the data the kernel has (with labels the
grader holds) under each way a course's students prepare it, keeps the way the model does
best on, and measures the held-out data that way. The choice is made on visible data only;
a model that is wrong under every way stays wrong.

A way is an expression of the grader's in ``inputs`` (the array the grader sends), run in
the kernel just before the model; ``np`` there is numpy.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checking import CheckFailed
from ..errors import StudentRaised
from .frameworks import KERAS_PRELUDE, not_a_module
from .training import _PRELUDE, _name, _source, cross_entropy, outputs

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

#: How many visible items a way is tried on, at most, and how many values of theirs in all
#: (72 pictures of 96 x 96 x 3): the way a network was trained with fits clearly best.
SAMPLE = 256
SAMPLE_VALUES = 2_000_000


@dataclass(frozen=True)
class Way:
    """One way of preparing inputs: its words, and the expression that does it. A way of
    feeding pictures that is affine per channel in the pixels scaled to [0, 1] says so
    (``affine``: the scale and shift of each channel), so that the grader can work in pixel
    space in front of the network (an attack's epsilon is in pixels)."""

    words: str
    expression: str
    affine: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def image_ways(shape: tuple[int, ...], *, mean: float, std: float) -> list[Way]:
    """Ways of feeding images stored as uint8 (N x pixels): scalings (as stored, divided by
    255, centred on 0.5, standardised by the training images' mean and std) times layouts
    (flat rows, or ``shape`` per image: (1, 28, 28), say)."""
    scalings = [
        ("divided by 255", "inputs.astype('float32') / 255.0"),
        ("as stored (0 to 255)", "inputs.astype('float32')"),
        ("divided by 255 and centred on 0.5 (Normalize((0.5,), (0.5,)))",
         "(inputs.astype('float32') / 255.0 - 0.5) / 0.5"),
        (f"standardised by the training images' mean {mean:.3g} and std {std:.3g}",
         f"(inputs.astype('float32') / 255.0 - {mean!r}) / {std!r}"),
    ]
    layouts = [("as rows", "{x}.reshape(len(inputs), -1)")]
    if len(shape) > 1:
        layouts.append((f"as {' x '.join(map(str, shape))} pictures", "{x}.reshape(len(inputs), " + ", ".join(
            map(str, shape)) + ")"))
    return [Way(f"{scaled}, {laid}", layout.format(x=f"({expression})"))
            for laid, layout in layouts for scaled, expression in scalings]


_IMAGENET_MEAN = "np.asarray([0.485, 0.456, 0.406], dtype='float32').reshape(1, -1, 1, 1)"
_IMAGENET_STD = "np.asarray([0.229, 0.224, 0.225], dtype='float32').reshape(1, -1, 1, 1)"


def picture_ways(*, mean: list[float], std: list[float]) -> list[Way]:
    """Ways of feeding colour pictures stored N x H x W x C uint8 to a PyTorch network (N x C x H x W,
    as ``ToTensor`` makes them): divided by 255, then as they are, centred on 0.5, or
    standardised per channel by the training pictures' mean and std or by ImageNet's; or as
    stored."""
    chw = "inputs.astype('float32').transpose(0, 3, 1, 2)"
    centre = f"np.asarray({[float(v) for v in mean]!r}, dtype='float32').reshape(1, -1, 1, 1)"
    spread = f"np.asarray({[float(v) for v in std]!r}, dtype='float32').reshape(1, -1, 1, 1)"
    shown = ", ".join(f"{v:.3g}" for v in mean), ", ".join(f"{v:.3g}" for v in std)
    def standardised(means: list[float], stds: list[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return tuple(1 / s for s in stds), tuple(-m / s for m, s in zip(means, stds))

    channels = len(mean)
    return [
        Way("divided by 255 (ToTensor)", f"{chw} / 255.0", ((1.0,) * channels, (0.0,) * channels)),
        Way("divided by 255 and centred on 0.5 (Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))",
            f"({chw} / 255.0 - 0.5) / 0.5", ((2.0,) * channels, (-1.0,) * channels)),
        Way(f"standardised per channel by the training pictures' mean ({shown[0]}) and std ({shown[1]})",
            f"({chw} / 255.0 - {centre}) / {spread}", standardised([float(v) for v in mean], [float(v) for v in std])),
        Way("standardised per channel by ImageNet's mean and std (pretrained networks' Normalize)",
            f"({chw} / 255.0 - {_IMAGENET_MEAN}) / {_IMAGENET_STD}",
            standardised([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])),
        Way("as stored (0 to 255)", chw, ((255.0,) * channels, (0.0,) * channels)),
    ]


def with_noise(way: Way, amount: float, seed: int) -> Way:
    """``way``, then ``amount`` x N(0, 1) added to every value the network gets (the grader's own draws)."""
    noise = f"np.float32({amount!r}) * np.random.default_rng({seed}).standard_normal(x.shape).astype('float32')"
    return Way(f"{way.words}, with {amount:g} x N(0, 1) added", f"(lambda x: x + {noise})({way.expression})")


def _sample(images: np.ndarray) -> slice:
    size = max(1, images[:1].size)
    return slice(0, min(len(images), SAMPLE, max(32, SAMPLE_VALUES // size)))


WAYS_PROBE = _PRELUDE + '''
def _subject():
    return __MODEL__


def probe(inputs, expressions, batch):
    import numpy as np
    try:
        model = _module(_subject())
    except _NotModule as error:
        return {"not_module": str(error)}
    found = []
    for expression in expressions:
        try:
            found.append(_run(model, eval(expression, {"np": np, "inputs": inputs}), batch))
        except Exception as error:  # the model does not take its inputs this way
            found.append({"failed": type(error).__name__ + ": " + str(error)[:300]})
    return found
'''


def outputs_by_way(nb: KernelChannel, model: str, images: np.ndarray, ways: list[Way]) -> list[np.ndarray | str]:
    """``model``'s outputs on ``images`` prepared each of ``ways`` (all in one request), or why
    it could not be run that way."""
    found = nb.probe(_source(WAYS_PROBE, model=_name(model)), images, [w.expression for w in ways], 512)
    if isinstance(found, dict) and "not_module" in found:
        raise not_a_module(model, found["not_module"])
    if not isinstance(found, list) or len(found) != len(ways):
        raise CheckFailed(f"`{model}`'s outputs could not be read")
    return [f"`{model}` raised {result.get('failed')}" if isinstance(result, dict) else
            np.asarray(result, dtype=np.float64) for result in found]


def class_losses(nb: KernelChannel, model: str, images: np.ndarray, labels: np.ndarray, ways: list[Way], *,
                 classes: int) -> tuple[list[tuple[float, Way]], str]:
    """``model``'s cross-entropy on ``images`` (with the grader's ``labels``) fed each of
    ``ways``, for the ways it runs under with ``classes`` scores an image (all tried in one
    request), and why the last other way failed."""
    found, last = [], ""
    for way, scores in zip(ways, outputs_by_way(nb, model, images, ways)):
        if isinstance(scores, str):
            last = scores
        elif scores.ndim != 2 or scores.shape != (len(labels), classes):
            last = f"`{model}` gave outputs of shape {scores.shape}, not ({len(labels)}, {classes})"
        elif np.isfinite(score := cross_entropy(scores, labels)):
            found.append((score, way))
    return found, last


def choose_way(nb: KernelChannel, model: str, images: np.ndarray, labels: np.ndarray, ways: list[Way], *,
               what: str, classes: int) -> Way:
    """The way ``model`` classifies ``images`` (visible ones, with the grader's ``labels``) best:
    the lowest cross-entropy, finer than accuracy between ways close to the one it was
    trained with. A model that runs under no way at all is the student's failure, with the
    last reason."""
    key = ("way", model, what)
    if key in nb.memo:
        return nb.memo[key]
    chosen = _sample(images)
    found, last = class_losses(nb, model, images[chosen], labels[chosen], ways, classes=classes)
    if not found:
        raise CheckFailed(f"`{model}` could not be run on the {what} images in any of the ways students feed them "
                          f"(flat or as pictures, scaled or not): {last}")
    nb.memo[key] = min(found, key=lambda fit: fit[0])[1]
    return nb.memo[key]


def sample(images: np.ndarray) -> np.ndarray:
    """The visible images a way is chosen on: the first ``SAMPLE``, at most ``SAMPLE_VALUES`` values (at least 32)."""
    return images[_sample(images)]


#: The most bytes of images sent to the kernel in one request.
CHUNK_BYTES = 16 << 20


def outputs_as(nb: KernelChannel, model: str, images: np.ndarray, way: Way, *, what: str,
               timeout: float | None = None) -> np.ndarray:
    """``model``'s outputs on ``images`` prepared ``way`` (sent in parts of at most ``CHUNK_BYTES``)."""
    step = max(1, CHUNK_BYTES // max(1, images[:1].nbytes))
    parts = [outputs(nb, model, images[i:i + step], what=f"the outputs of `{model}` on {what}",
                     prepare=way.expression, timeout=timeout) for i in range(0, len(images), step)]
    if len({part.shape[1:] for part in parts}) > 1:
        raise CheckFailed(f"`{model}` gave outputs of different shapes on parts of {what}: "
                          f"{sorted({part.shape for part in parts})}")
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def class_scores_as(nb: KernelChannel, model: str, images: np.ndarray, way: Way, *, what: str,
                    classes: int, timeout: float | None = None) -> np.ndarray:
    """``model``'s scores on ``images`` prepared ``way``; another shape is the student's mistake."""
    scores = outputs_as(nb, model, images, way, what=what, timeout=timeout)
    if scores.shape != (len(images), classes):
        raise CheckFailed(f"`{model}` should give {classes} scores per image, ({len(images)}, {classes}) on {what}; "
                          f"it gave shape {scores.shape}")
    return scores


def reconstruction_ways(shape: tuple[int, ...]) -> list[Way]:
    """Ways an autoencoder of images in [0, 1] (N x pixels) may take them: as they are, minus
    the mean image (added back to its output), in 0 to 255 (its output scaled back); flat or
    as ``shape`` pictures. Its output is flattened. (The expression is the probe's: whether
    to centre, the scale, the shape of one image.)"""
    ways = []
    for laid, layout in (("as rows", [-1]), (f"as {' x '.join(map(str, shape))} pictures", list(shape))):
        ways += [
            Way(f"in [0, 1], {laid}", repr((False, 1.0, layout))),
            Way(f"in [0, 1] minus the mean image, {laid}", repr((True, 1.0, layout))),
            Way(f"in 0 to 255, {laid}", repr((False, 255.0, layout))),
        ]
    return ways


RECONSTRUCT_PROBE = KERAS_PRELUDE + '''
def _subject():
    return __MODEL__


def _rebuilt(model, x, mean, centred, scale, layout):
    import numpy as np
    import torch
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    shift = np.asarray(mean, dtype=np.float32) if centred else np.float32(0.0)
    out = []
    for i in range(0, len(x), 256):
        part = ((x[i:i + 256] - shift) * scale).reshape([len(x[i:i + 256]), *layout])
        y = model(torch.as_tensor(part).to(device=device, dtype=dtype))
        if isinstance(y, (tuple, list)):
            y = y[0]
        out.append(y.float().cpu().reshape(len(part), -1).numpy() / scale + shift)
    return np.concatenate(out)


def probe(images, mean, ways):
    import numpy as np
    import torch
    model = _subject()
    if not isinstance(model, torch.nn.Module):
        return {"not_module": _what(model)}
    x = np.asarray(images, dtype=np.float32)
    training = model.training
    model.eval()
    found = []
    try:
        with torch.no_grad():
            for centred, scale, layout in ways:
                try:
                    found.append(_rebuilt(model, x, mean, centred, scale, layout))
                except Exception as error:  # the network does not take its faces this way
                    found.append({"failed": type(error).__name__ + ": " + str(error)[:300]})
    finally:
        model.train(training)
    return found
'''


def _reconstructions(nb: KernelChannel, model: str, images: np.ndarray, ways: list[Way],
                     mean: np.ndarray) -> list[np.ndarray | str]:
    """``model``'s reconstructions of ``images`` fed each of ``ways``, or why it failed that way."""
    found = nb.probe(RECONSTRUCT_PROBE.replace("__MODEL__", _name(model)), images.astype(np.float32),
                     mean.astype(np.float32), [ast.literal_eval(way.expression) for way in ways])
    if isinstance(found, dict) and "not_module" in found:
        raise not_a_module(model, found["not_module"])
    if not isinstance(found, list) or len(found) != len(ways):
        raise CheckFailed(f"`{model}`'s reconstructions could not be read")
    results: list[np.ndarray | str] = []
    for result in found:
        if isinstance(result, dict):
            results.append(f"`{model}` raised {result.get('failed')}")
            continue
        out = np.asarray(result, dtype=np.float64)
        results.append(out if out.shape == images.shape else
                       f"`{model}` should rebuild each image of {images.shape[1]} pixels; it gave outputs of shape "
                       f"{out.shape} for {len(images)} images")
    return results


def reconstruct(nb: KernelChannel, model: str, images: np.ndarray, way: Way, mean: np.ndarray) -> np.ndarray:
    """``model``'s reconstructions of ``images`` (N x pixels in [0, 1]) fed ``way`` (``mean``:
    the mean image of the visible ones), flattened."""
    [found] = _reconstructions(nb, model, images, [way], mean)
    if isinstance(found, str):
        raise CheckFailed(found)
    return found


def choose_reconstruction(nb: KernelChannel, model: str, visible: np.ndarray, ways: list[Way], *,
                          inputs: np.ndarray | None = None) -> Way:
    """The way ``model`` rebuilds a sample of ``visible`` images (in [0, 1]) best: the lowest
    squared error; fed ``inputs`` instead where given (the same images with the grader's
    noise, for a denoising autoencoder), and still compared with ``visible``."""
    key = ("reconstruction", model, inputs is not None)
    if key in nb.memo:
        return nb.memo[key]
    sample = visible[: min(len(visible), 64)]
    fed = sample if inputs is None else inputs[: len(sample)]
    best: tuple[float, Way] | None = None
    last = ""
    for way, found in zip(ways, _reconstructions(nb, model, fed, ways, visible.mean(axis=0))):
        if isinstance(found, str):
            last = found
            continue
        error = float(np.mean((found - sample) ** 2))
        if np.isfinite(error) and (best is None or error < best[0]):
            best = (error, way)
    if best is None:
        raise CheckFailed(f"`{model}` could not rebuild faces in any of the ways students feed them: {last}")
    nb.memo[key] = best[1]
    return best[1]


ELEMENTWISE_PROBE = '''
def _subject():
    return __FUNCTION__


def probe(values, args):
    return [_subject()(float(value), *args) for value in values]
'''


def call_elementwise(nb: KernelChannel, function: str, values: np.ndarray, *args: Any) -> Any:
    """``function(values, *args)`` in the kernel; where it raises on an array (a function
    written for one number, ``if x <= 0``, as students write ELU), it is called on each
    value in turn and the results come back as a list."""
    try:
        return nb.call(function, values, *args)
    except StudentRaised as first:
        try:
            return nb.probe(_source(ELEMENTWISE_PROBE, function=_name(function)), np.asarray(values).tolist(),
                            list(args))
        except StudentRaised:
            raise first from None
