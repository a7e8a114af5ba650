"""Optimisers, predictions and "trained further": how a check measures a student's training.

Inputs a model is run on are either arrays the grader sends (held-out images the kernel
never had) or an expression the kernel evaluates (``load_data(DATA_DIR)["x_train"]``: data
the view holds, which need not cross the channel). Models are run in eval mode, without
gradients, in batches, on their own device, and left in the mode they were in. Losses and
accuracies are computed here, on the trusted side, from the outputs that come back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checking import CheckFailed, as_array
from .frameworks import KERAS_PRELUDE, not_a_module

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

_PRELUDE = KERAS_PRELUDE + '''
class _NotModule(Exception):
    pass


def _module(model):
    import torch
    if not isinstance(model, torch.nn.Module) and not _is_keras(model):
        raise _NotModule(_what(model))
    return model


def _pictures(images, transform):
    """Each image (H x W x C uint8) as a PIL picture through ``transform``, stacked."""
    import numpy as np
    import torch
    from PIL import Image
    return torch.stack([torch.as_tensor(transform(Image.fromarray(np.asarray(image, dtype=np.uint8))))
                        for image in images])


def _run(model, inputs, batch, transform=None):
    import numpy as np
    import torch
    if _is_keras(model):  # a Keras network: its outputs by Keras's own call, pictures channels last
        if transform is not None:
            inputs = torch.cat([_pictures(inputs[i:i + batch], transform) for i in range(0, len(inputs), batch)])
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.detach().cpu().numpy()
        return torch.as_tensor(_keras_outputs(model, inputs, batch))
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    if transform is None:
        inputs = torch.as_tensor(np.ascontiguousarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = []
            for i in range(0, len(inputs), batch):
                chosen = inputs[i:i + batch] if transform is None else _pictures(inputs[i:i + batch], transform)
                out.append(model(chosen.to(device=device, dtype=dtype).contiguous()).float().cpu())
    finally:
        model.train(training)
    return torch.cat(out) if out else torch.zeros(0)
'''

# The student's names are read in functions of their own that bind no local names: a local
# of the probe called like a student's name (``model``) would hide it.
OUTPUTS_PROBE = _PRELUDE + '''
def _subject():
    return __MODEL__


def _inputs(inputs):
    return __INPUTS__


def _transform():
    return __TRANSFORM__


def probe(inputs, batch):
    try:
        model = _module(_subject())
    except _NotModule as error:
        return {"not_module": str(error)}
    return _run(model, _inputs(inputs), batch, _transform())
'''

OPTIMIZER_PROBE = KERAS_PRELUDE + '''
def _subjects():
    return __OPTIMIZER__, __MODEL__


def probe():
    optimizer, model = _subjects()
    import torch
    if not isinstance(model, torch.nn.Module):
        return {"not_module": _what(model)}
    if not isinstance(optimizer, torch.optim.Optimizer):
        return {"not_optimizer": type(optimizer).__module__ + "." + type(optimizer).__qualname__}
    owned = {id(p) for p in model.parameters() if p.requires_grad}
    listed = {id(p) for group in optimizer.param_groups for p in group["params"]}
    settings = ("lr", "initial_lr", "momentum", "weight_decay", "betas", "nesterov", "dampening")
    return {
        "type": type(optimizer).__name__,
        "groups": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k in settings}
                   for g in optimizer.param_groups],
        "covers": owned <= listed,
        "owned": len(owned),
        "updated": len(owned & listed),
    }
'''

FURTHER_PROBE = _PRELUDE + '''
def _subjects():
    return __MODEL__, __OPTIMIZER__


def _data(inputs, targets):
    return __INPUTS__, __TARGETS__


def probe(epochs, batch, loss, seed, sent_inputs=None, sent_targets=None):
    import copy
    import torch
    model, optimizer = _subjects()
    if not isinstance(model, torch.nn.Module):
        return {"not_module": _what(model)}
    if not isinstance(optimizer, torch.optim.Optimizer):
        return {"not_optimizer": type(optimizer).__module__ + "." + type(optimizer).__qualname__}
    inputs, targets = (torch.as_tensor(array) for array in _data(sent_inputs, sent_targets))
    before = _run(model, inputs, 1024)
    copied = copy.deepcopy(model)
    group = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    again = type(optimizer)(copied.parameters())
    again.param_groups[0].update(group)
    if [id(p) for g in optimizer.param_groups for p in g["params"]] == [id(p) for p in model.parameters()]:
        again.load_state_dict(optimizer.state_dict())  # momentum and Adam's moments carry on
    criterion = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()
    first = next(iter(copied.parameters()))
    generator = torch.Generator().manual_seed(seed)
    copied.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for i in range(0, len(inputs), batch):
            chosen = order[i:i + batch]
            x = inputs[chosen].to(device=first.device, dtype=first.dtype)
            y = targets[chosen].to(first.device)
            y = y.long() if loss == "cross_entropy" else y.to(first.dtype)
            again.zero_grad()
            criterion(copied(x), y).backward()
            again.step()
    return {"before": before, "after": _run(copied, inputs, 1024)}
'''


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a name")
    return value


def _refused(found: Any, names: dict[str, str]) -> Any:
    """``found``, unless the probe said a name is not what it should be."""
    if isinstance(found, dict):
        if "not_module" in found:
            raise not_a_module(names["model"], found["not_module"])
        if "not_optimizer" in found:
            raise CheckFailed(f"`{names['optimizer']}` should be a torch.optim optimizer, is a "
                              f"{found['not_optimizer']}")
    return found


def _source(template: str, **parts: str) -> str:
    for key, value in parts.items():
        template = template.replace(f"__{key.upper()}__", value)
    return template


def _made(inputs: Any, prepare: str | None) -> tuple[str, np.ndarray | None]:
    """The kernel's expression for the inputs, and the array sent for them: ``inputs`` an
    expression the kernel evaluates, or an array sent as ``inputs``, which ``prepare`` (an
    expression of the grader's in ``inputs``; ``np`` is numpy) may turn into the model's inputs."""
    if isinstance(inputs, str):
        return inputs, None
    if prepare is not None:
        return f"(lambda np: {prepare})(__import__('numpy'))", np.asarray(inputs)
    return "inputs", np.asarray(inputs)


def outputs(nb: KernelChannel, model: str, inputs: Any, *, what: str, batch: int = 512,
            transform: str | None = None, timeout: float | None = None, prepare: str | None = None) -> np.ndarray:
    """``model``'s outputs, as floats, on ``inputs``: an array the grader sends, or (a str)
    an expression the kernel evaluates to the inputs. With ``transform`` (a name in the
    notebook, a torchvision-style transform) the inputs are images (N x H x W x C uint8),
    each made a PIL picture and put through the transform first, as a dataset would. With
    ``prepare``, an expression of the grader's in ``inputs`` (the array sent; ``np`` is
    numpy) makes the model's inputs from them (see ``inputs.Way``)."""
    expression, sent = _made(inputs, prepare)
    source = _source(OUTPUTS_PROBE, model=_name(model), inputs=expression,
                     transform="None" if transform is None else _name(transform))
    found = nb.probe(source, sent, batch, timeout=timeout)
    return as_array(_refused(found, {"model": model}), what)


def class_scores(nb: KernelChannel, model: str, inputs: Any, *, count: int, classes: int,
                 what: str = "inputs", transform: str | None = None, batch: int = 512,
                 timeout: float | None = None) -> np.ndarray:
    """``model``'s scores (count, classes) on ``inputs`` (see ``outputs``); another shape is
    the student's mistake, named with ``what`` the inputs are."""
    scores = outputs(nb, model, inputs, what=f"the outputs of `{model}` on {what}", transform=transform,
                     batch=batch, timeout=timeout)
    if scores.shape != (count, classes):
        raise CheckFailed(f"`{model}` should give {classes} scores per input, ({count}, {classes}) on {what}; "
                          f"it gave shape {scores.shape}")
    return scores


def predictions(nb: KernelChannel, model: str, inputs: Any, *, count: int, classes: int) -> np.ndarray:
    """The class ``model`` predicts (argmax of its outputs) for each of ``count`` inputs."""
    return class_scores(nb, model, inputs, count=count, classes=classes).argmax(axis=1)


PREDICT_PROBE = """
def _function():
    return __FUNCTION__


def _subject():
    return __MODEL__


def _inputs(inputs):
    return __INPUTS__


def _plain(value):
    import numpy as np
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a torch or TensorFlow tensor
        value = value.numpy()
    return np.asarray(value)


def probe(inputs, batch):
    import numpy as np
    function, model, x = _function(), _subject(), _inputs(inputs)
    parts = [_plain(function(model, x[i:i + batch])) for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
"""


def predict_codes(nb: KernelChannel, function: str, model: str, inputs: Any, *, count: int, classes: int,
                  what: str = "inputs", batch: int = 4096, timeout: float | None = None,
                  prepare: str | None = None) -> np.ndarray:
    """The classes (0 to ``classes`` - 1) the student's ``function(model, X)`` predicts for
    ``inputs`` (an array sent, or an expression the kernel evaluates), called on batches of
    numpy arrays: framework-neutral, ``function`` may run a torch or a Keras model and
    return numpy, a tensor or a list. One class code per row, or one score per class and row
    (as Keras's ``model.predict`` gives: the highest counts) is accepted. ``prepare`` is as
    ``outputs``'s."""
    expression, sent = _made(inputs, prepare)
    source = _source(PREDICT_PROBE, function=_name(function), model=_name(model), inputs=expression)
    call = f"`{function}({model}, X)` on {what}"
    found = as_array(nb.probe(source, sent, batch, timeout=timeout), f"what {call} returned")
    if found.ndim == 2 and found.shape == (count, classes):
        return found.argmax(axis=1)
    if found.shape not in ((count,), (count, 1)):
        raise CheckFailed(f"{call} should return one class per row ({count} of them), or {classes} scores per "
                          f"row; it returned shape {found.shape}")
    codes = found.reshape(-1)
    if not np.all(np.isfinite(codes)) or not np.all(codes == np.round(codes)) or codes.min(initial=0) < 0 \
            or codes.max(initial=0) >= classes:
        raise CheckFailed(f"{call} should return class codes 0 to {classes - 1}; it returned values from "
                          f"{codes.min():g} to {codes.max():g}")
    return codes.astype(np.int64)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from class ``scores`` (logits), computed here."""
    shifted = np.exp(scores.astype(np.float64) - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def cross_entropy(scores: np.ndarray, labels: np.ndarray) -> float:
    """The mean cross-entropy of class ``scores`` (logits) against ``labels``, computed here."""
    shifted = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), labels.astype(int)].mean())


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == labels).mean())


@dataclass(frozen=True)
class Optimizer:
    """What an optimiser is and does: its class, its parameter groups' settings, and whether
    it updates every trainable parameter of the model."""

    type: str
    groups: list[dict[str, Any]]
    covers: bool
    owned: int
    updated: int

    def expect(self, kinds: tuple[str, ...], *, what: str, model: str) -> None:
        if self.type not in kinds:
            raise CheckFailed(f"`{what}` should be torch.optim.{' or '.join(kinds)} (the handout asks for it), "
                              f"is {self.type}")
        if not self.covers:
            raise CheckFailed(f"`{what}` updates {self.updated} of the {self.owned} trainable parameter tensors "
                              f"of `{model}`; it should update all of them")

    def setting(self, key: str) -> list[Any]:
        return [group.get(key) for group in self.groups]


def optimizer(nb: KernelChannel, name: str, model: str) -> Optimizer:
    """Read the optimiser ``name`` and what it updates of ``model``."""
    found = _refused(nb.probe(_source(OPTIMIZER_PROBE, optimizer=_name(name), model=_name(model))),
                     {"model": model, "optimizer": name})
    return Optimizer(str(found["type"]), list(found["groups"]), bool(found["covers"]), int(found["owned"]),
                     int(found["updated"]))


@dataclass(frozen=True)
class Further:
    """The outputs of the student's model on its training inputs, before and after the grader
    trained a copy on for some epochs with the student's optimiser settings."""

    before: np.ndarray
    after: np.ndarray


def trained_further(nb: KernelChannel, model: str, optimizer_name: str, inputs: Any, targets: Any, *,
                    epochs: int, batch: int, loss: str = "cross_entropy", seed: int = 0,
                    prepare: str | None = None) -> Further:
    """Train a deep copy of ``model`` for ``epochs`` more epochs on ``inputs`` and ``targets``
    (arrays the grader sends, or expressions the kernel evaluates: training data the view
    holds), with a new optimiser of ``optimizer_name``'s class and settings (its state too,
    where it maps onto the copy), mini-batches of ``batch`` in a seeded order. ``prepare``
    makes the model's inputs from sent ones (see ``outputs``). The student's model is not touched."""
    if loss not in ("cross_entropy", "mse"):
        raise ValueError(f"loss {loss!r}: cross_entropy or mse")
    made, sent_inputs = _made(inputs, prepare)
    sent = [sent_inputs, None if isinstance(targets, str) else np.asarray(targets)]
    source = _source(FURTHER_PROBE, model=_name(model), optimizer=_name(optimizer_name), inputs=made,
                     targets=targets if isinstance(targets, str) else "targets")
    found = _refused(nb.probe(source, epochs, batch, loss, seed, *sent),
                     {"model": model, "optimizer": optimizer_name})
    before = as_array(found["before"], f"the outputs of `{model}`")
    after = as_array(found["after"], f"the outputs of `{model}` trained further", shape=before.shape)
    return Further(before, after)
