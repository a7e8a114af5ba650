"""The grader's attack network: a small CNN for 3 x 32 x 32 pictures, trained here once
(seeded, one thread) on synthetic pictures with real class structure (STL10's stand-in
objects, shrunk to 32 x 32), so that it has margins an attack can be measured against. Its
weights and held-out pictures are cached as ``.npz`` in the grader's private cache, keyed
by this module's code. ``NETWORK`` is the code that builds it and runs the grader's own
FGSM, PGD and MIM, shared by this side and the kernel's probes (``attacks.py``); here it
gives the reference attacks, the gradient, sign noise and the network's accuracy and loss.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_write

if TYPE_CHECKING:
    import torch

#: Bump to retrain the attack network (the cache key also covers this module's code and the
#: stand-in's generator).
VERSION = "attack-net-1"

# The handout's numbers (FIT3181 2023 A1, 3.8/3.9).
EPSILON = 0.0313
STEPS = 20
STEP_SIZE = 0.002
DECAY = 1.0

CLASSES = 10
SIDE = 32
_TRAIN, _HELD_OUT, _EPOCHS, _SEED = 800, 256, 8, 3181
#: Pictures an attack check runs on (the first of the held-out ones).
COUNT = 64

#: The roles a check can pass to the student's attack function, positionally or by keyword.
ROLES = ("model", "x", "y", "epsilon", "steps", "step_size", "decay")
FGSM_ARGS = ("model", "x", "y", "epsilon")
ITERATIVE_ARGS = ("model", "x", "y", "epsilon", "steps", "step_size")
KINDS = ("fgsm", "pgd", "mim")

# The grader's network and attacks: one text, run here and in the kernel (where the names
# carry a prefix no notebook uses, so that they hide none of the student's).
NETWORK = '''
import torch


def _ag_make():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10),
    )


def _ag_build(weights):
    net = _ag_make()
    net.load_state_dict({name: torch.tensor(value) for name, value in weights.items()})
    return net.eval()


def _ag_gradient(model, x, y):
    """The gradient of the mean cross-entropy with respect to the input only (no parameter's
    .grad is touched)."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        return torch.autograd.grad(loss, x)[0]


def _ag_fgsm(model, x, y, epsilon):
    return (x + epsilon * _ag_gradient(model, x, y).sign()).clamp(0, 1).detach()


def _ag_iterate(model, x, y, epsilon, steps, step_size, decay, start=None):
    """PGD (decay None), or MIM: the momentum of the per-sample L1-normalised gradients. From
    x itself, or with start (a seed) from a uniform random point of the ball. Each step of
    size step_size along the sign, projected onto the ball and [0, 1]."""
    x = x.detach()
    x_adv, momentum = x.clone(), torch.zeros_like(x)
    if start is not None:
        generator = torch.Generator().manual_seed(start)
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x_adv = (x + (2 * noise - 1) * epsilon).clamp(0, 1)
    for _ in range(int(steps)):
        grad = _ag_gradient(model, x_adv, y)
        if decay is not None:
            norm = grad.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
            momentum = decay * momentum + grad / norm
            grad = momentum
        x_adv = x_adv + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1).detach()
    return x_adv


def _ag_attack(kind, model, x, y, epsilon, steps, step_size, decay, start=None):
    if kind == "fgsm":
        return _ag_fgsm(model, x, y, epsilon)
    return _ag_iterate(model, x, y, epsilon, steps, step_size, decay if kind == "mim" else None, start)
'''

#: The same network built with Keras, channels last (kernel side): a TensorFlow student's
#: attack runs on it where it cannot run on the PyTorch one (``attacks.ATTACK_PROBE``).
KERAS_NETWORK = '''
def _ag_keras_twins(weights):
    """The grader's network as Keras models, channels last: scores, then softmax at the end.
    Each torch tensor's name maps to (Keras layer index, weight index, from torch, to torch)."""
    import numpy as np
    from tensorflow import keras

    convert = {  # convolutions (out, in, kh, kw) as (kh, kw, in, out); the linear layer's inputs
        "0.weight": (0, 0, lambda w: w.transpose(2, 3, 1, 0), lambda w: w.transpose(3, 2, 0, 1)),
        "0.bias": (0, 1, lambda b: b, lambda b: b),
        "3.weight": (3, 0, lambda w: w.transpose(2, 3, 1, 0), lambda w: w.transpose(3, 2, 0, 1)),
        "3.bias": (3, 1, lambda b: b, lambda b: b),  # read C x H x W by torch, H x W x C by Keras
        "7.weight": (7, 0, lambda w: w.reshape(10, 32, 8, 8).transpose(2, 3, 1, 0).reshape(2048, 10),
                     lambda w: w.reshape(8, 8, 32, 10).transpose(3, 2, 0, 1).reshape(10, 2048)),
        "7.bias": (7, 1, lambda b: b, lambda b: b),
    }
    twins = []
    for softmax in (False, True):
        model = keras.Sequential([
            keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, padding="same"), keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2), keras.layers.Conv2D(32, 3, padding="same"), keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax" if softmax else None)])
        for name, (layer, index, there, _) in convert.items():
            values = model.layers[layer].get_weights()
            values[index] = np.asarray(there(np.asarray(weights[name])), dtype=np.float32)
            model.layers[layer].set_weights(values)
        twins.append(model)
    return twins, convert


def _ag_on_keras(weights, images, labels, numbers, args, kwargs, seed):
    import numpy as np
    import tensorflow as tf
    twins, convert = _ag_keras_twins(weights)
    found = []
    for model, ends in zip(twins, ("scores", "softmax")):
        values = {"model": model, "x": tf.constant(np.ascontiguousarray(images.transpose(0, 2, 3, 1))),
                  "y": tf.constant(labels), **numbers}
        tf.random.set_seed(seed)
        try:
            out = _ag_subject()(*[values[role] for role in args], **{key: values[role] for key, role in kwargs.items()})
        except Exception as error:
            found.append({"ends": ends, "error": f"{type(error).__name__}: {error}"[:200]})
            continue
        out = np.asarray(out)
        if out.ndim == 4 and out.shape[-1] == 3 and out.shape[1] != 3:
            out = out.transpose(0, 3, 1, 2)
        after = {name: back(model.layers[layer].get_weights()[index]) for name, (layer, index, _, back)
                 in convert.items()}
        found.append({"ends": ends, "x_adv": np.ascontiguousarray(out, dtype=np.float32), "weights": after})
    if not any("x_adv" in twin for twin in found):
        raise RuntimeError(found[0]["error"])
    return found
'''


def _key() -> str:
    from ..data import stl10

    sha = hashlib.sha256(VERSION.encode())
    for module in (__file__, stl10.__file__):
        sha.update(Path(str(module)).read_bytes())
    return sha.hexdigest()[:12]


def _scope() -> dict[str, Any]:
    scope: dict[str, Any] = {}
    exec(NETWORK, scope)  # the grader's own code, shared with the probes
    return scope


def _pictures(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """STL10's stand-in objects (a shape and a palette per class), 3 x 3 block means to 32 x 32."""
    from ..data import stl10

    labels = rng.integers(0, CLASSES, count)
    big = stl10.draw(labels, rng).astype(np.float32)
    factor = stl10.SIDE // SIDE
    small = big.reshape(count, SIDE, factor, SIDE, factor, 3).mean(axis=(2, 4)) / 255
    return np.ascontiguousarray(small.transpose(0, 3, 1, 2), dtype=np.float32), labels.astype(np.int64)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread for the grader's own computations: repeatable, and on a loaded
    machine many times faster than threads that wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train() -> dict[str, np.ndarray]:
    import torch

    rng = np.random.default_rng(_SEED)
    x_train, y_train = _pictures(_TRAIN, rng)
    images, labels = _pictures(_HELD_OUT, rng)
    with _one_thread():  # the same weights on every run of this machine
        torch.manual_seed(_SEED)
        net = _scope()["_ag_make"]()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(_SEED)
        inputs, targets = torch.tensor(x_train), torch.tensor(y_train)
        net.train()
        for _ in range(_EPOCHS):
            order = torch.randperm(len(inputs), generator=generator)
            for i in range(0, len(inputs), 32):
                chosen = order[i:i + 32]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(inputs[chosen]), targets[chosen]).backward()
                optimizer.step()
    weights = {f"weight:{name}": value.detach().numpy() for name, value in net.state_dict().items()}
    return {**weights, "images": images, "labels": labels}


@functools.lru_cache(maxsize=1)
def _stored() -> dict[str, np.ndarray]:
    """The network's weights and held-out pictures, from the cache, or trained into it. Graders
    on one machine share the cache: the first trains under a lock while the others wait."""
    from ..data.context import private_cache

    folder = private_cache() / "attacks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"network-{_key()}.npz"
    arrays = _read(path)
    if not arrays:
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed, or when this process ends
            arrays = _read(path)  # trained while this grader waited
            if not arrays:
                arrays = _train()
                buffer = io.BytesIO()
                np.savez(buffer, **arrays)  # type: ignore[arg-type]
                atomic_write(path, buffer.getvalue())
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a cached ``.npz``; none when it is missing or damaged (then made again)."""
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return {}


def attack_network() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The grader's attack network: its weights (a state dict of numpy arrays), its held-out
    pictures (N x 3 x 32 x 32 float32 in [0, 1]) and their labels (int64, 0-9). Trained on
    first use (a few seconds), then read from the cache (read-only arrays)."""
    arrays = _stored()
    weights = {name.removeprefix("weight:"): value for name, value in arrays.items() if name.startswith("weight:")}
    return weights, arrays["images"], arrays["labels"]


@functools.lru_cache(maxsize=1)
def network() -> torch.nn.Module:
    """The grader's copy of the network the kernel builds (eval mode)."""
    weights, _, _ = attack_network()
    return _scope()["_ag_build"](weights)


def reference(kind: str, images: np.ndarray, labels: np.ndarray, *, epsilon: float, steps: int = STEPS,
              step_size: float = STEP_SIZE, decay: float = DECAY, start: int | None = None) -> np.ndarray:
    """The grader's own attack (fgsm, pgd or mim) on its network; the iterative ones from x
    itself, or with ``start`` (a seed) from a uniform random point of the ε-ball."""
    import torch

    if kind not in KINDS:
        raise ValueError(f"attack {kind!r}: one of {', '.join(KINDS)}")
    attack = _scope()["_ag_attack"]
    with _one_thread():
        x_adv = attack(kind, network(), torch.tensor(images), torch.tensor(labels), epsilon, steps, step_size, decay,
                       start)
    return np.asarray(x_adv.numpy())


@functools.lru_cache(maxsize=32)
def _grader_attack(kind: str, count: int, epsilon: float, steps: int, step_size: float, decay: float,
                   start: int | None) -> np.ndarray:
    """``reference`` on the first ``count`` held-out pictures, kept in the cache beside the
    network (it is the same for every submission)."""
    from ..data.context import private_cache

    settings = f"{kind}-{count}-{epsilon!r}-{steps}-{step_size!r}-{decay!r}-{start}"
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    path = private_cache() / "attacks" / f"reference-{_key()}-{digest}.npy"
    try:
        found = np.load(path)
        if found.shape == (count, 3, SIDE, SIDE):
            return _frozen(found)
    except (OSError, ValueError):
        pass
    _, images, labels = attack_network()
    x_adv = reference(kind, images[:count], labels[:count], epsilon=epsilon, steps=steps, step_size=step_size,
                      decay=decay, start=start)
    buffer = io.BytesIO()
    np.save(buffer, x_adv)
    atomic_write(path, buffer.getvalue())
    return _frozen(x_adv)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def gradient(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The gradient of the grader's network's mean cross-entropy with respect to the pictures."""
    import torch

    with _one_thread():
        found = _scope()["_ag_gradient"](network(), torch.tensor(images), torch.tensor(labels))
    return np.asarray(found.numpy())


def sign_noise(images: np.ndarray, epsilon: float, seed: int = 0) -> np.ndarray:
    """The pictures plus random signs of size ``epsilon``, clipped to [0, 1]."""
    signs = np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.float32), size=images.shape)
    return np.clip(images + np.float32(epsilon) * signs, 0, 1).astype(np.float32)


def evaluate(images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of the grader's network on ``images``."""
    import torch

    with _one_thread(), torch.no_grad():
        scores = network()(torch.tensor(np.asarray(images, dtype=np.float32)))
        loss = torch.nn.functional.cross_entropy(scores.double(), torch.tensor(labels))
    return float((scores.argmax(1).numpy() == labels).mean()), float(loss)
