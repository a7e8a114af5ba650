"""Adversarial attacks (FGSM, PGD, MIM) checked against the grader's own, and the robust
accuracy of a student's model measured with the grader's attacks.

The student's attack function runs in the kernel on the grader's attack network (a small
CNN for 3 x 32 x 32 pictures, trained once and cached: ``attack_network.py``). The kernel builds
exactly that network from the weights sent, calls the student's function with it, the
pictures (a float32 tensor in [0, 1]), their labels (an int64 tensor; these are the
grader's own pictures, not a course's held-out data) and the handout's numbers, and sends
back the adversarial pictures and the network's parameters after the call. Everything
else is measured here, on the trusted side, with the grader's copy of the network:

- FGSM must equal clip(x + ε·sign(∇x CE), 0, 1) up to a few pixels where the gradient is
  float noise;
- PGD and MIM (Dong et al., 2018) must stay within the ε-ball and [0, 1], leave the model's
  weights as they were, and be about as strong as the grader's own attack of the same kind
  (mean cross-entropy and accuracy), and clearly stronger than random sign noise of size ε.
  A random start is accepted, and so is any way of computing the gradient.

``robust_accuracy`` measures a student's trained model: the pictures are sent to the
kernel, their labels never are. The grader's attacks run there against the model's own
predictions (the predicted-label trick), only predictions come back, and the accuracies
are computed here. With ``transfer_from``, PGD examples crafted on another model of the
notebook are fed to the model too, so that a model whose gradient is masked (zero, or
useless) does not look robust.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..checking import CheckFailed, as_array
from ..errors import Referred
from .frameworks import KERAS_PRELUDE, not_a_module

if TYPE_CHECKING:

    from ..grading.channel import KernelChannel

from .attack_network import (
    _SEED,
    COUNT,
    DECAY,
    EPSILON,
    FGSM_ARGS,
    ITERATIVE_ARGS,
    KERAS_NETWORK,
    KINDS,
    NETWORK,
    ROLES,
    STEP_SIZE,
    STEPS,
    _grader_attack,
    attack_network,
    evaluate,
    gradient,
    network,
    reference,
    sign_noise,
)

ATTACK_PROBE = NETWORK + KERAS_NETWORK + '''
def _ag_subject():
    return __FUNCTION__


def _ag_call(function, device, weights, images, labels, numbers, args, kwargs, seed):
    on_gpu = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=on_gpu):  # the notebook's generators as they were, after
        net = _ag_build(weights).to(device)  # (making the layers draws their initial weights)
        values = {"model": net, "x": torch.tensor(images, device=device), "y": torch.tensor(labels, device=device),
                  **numbers}
        torch.manual_seed(seed)
        out = function(*[values[role] for role in args], **{key: values[role] for key, role in kwargs.items()})
    return out, net


def probe(weights, images, labels, numbers, args, kwargs, seed):
    """The student's attack on the CPU; where it raises and there is a GPU, on the GPU (an
    attack may move its inputs to the notebook's device); the CPU's error is the one reported.
    In a notebook written with TensorFlow, an attack that raises on the grader's PyTorch
    network runs on the same network built with Keras (``_ag_keras_twins``: pictures channels
    last, one twin giving scores, one ending in softmax, as a Keras model often does); where
    it raises there too, it is said to be so, not raised."""
    import sys
    try:
        return _ag_attack(weights, images, labels, numbers, args, kwargs, seed)
    except NameError:  # a name the notebook lacks: found, or sent to a marker, as any other
        raise
    except Exception as error:
        if "tensorflow" not in sys.modules:
            raise
        first = (str(error).strip().splitlines() or [""])[0]
        failed = f"{type(error).__name__}: {first}"[:200]
    try:
        return {"twins": _ag_on_keras(weights, images, labels, numbers, args, kwargs, seed)}
    except Exception:
        return {"tensorflow": failed}


def _ag_attack(weights, images, labels, numbers, args, kwargs, seed):
    import numpy as np
    function = _ag_subject()
    try:
        out, net = _ag_call(function, torch.device("cpu"), weights, images, labels, numbers, args, kwargs, seed)
    except Exception:
        if not torch.cuda.is_available():
            raise
        on_gpu = None
        try:
            on_gpu = _ag_call(function, torch.device("cuda"), weights, images, labels, numbers, args, kwargs, seed)
        except Exception:
            pass
        if on_gpu is None:
            raise
        out, net = on_gpu
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu()
        out = (out.float() if out.is_floating_point() else out).numpy()
    elif not isinstance(out, np.ndarray):
        kind = type(out)
        out = {"not_array": kind.__module__ + "." + kind.__qualname__}
    return {"x_adv": out, "weights": {name: value.detach().cpu().numpy() for name, value in net.state_dict().items()}}
'''


ROBUST_PROBE = KERAS_PRELUDE + NETWORK + '''
def _ag_subject():
    return __MODEL__


def _ag_source():
    return __SOURCE__


def _ag_place(model):
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    return device, dtype


def _ag_predict(model, x):
    with torch.no_grad():
        out = model(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise _AgNotScores(type(out).__name__ if not isinstance(out, torch.Tensor) else str(tuple(out.shape)))
    return out.argmax(1)


class _AgNotScores(Exception):
    pass


class _AgFed(torch.nn.Module):
    """A network behind the way it takes its pictures, from pixels in [0, 1]: an affine map
    per channel (centred, standardised, 0 to 255), so that attacks work in pixel space."""

    def __init__(self, inner, scale, shift):
        super().__init__()
        self.inner, self.scale, self.shift = inner, list(scale), list(shift)

    def forward(self, x):
        scale = torch.as_tensor(self.scale, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        shift = torch.as_tensor(self.shift, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return self.inner(x * scale + shift)


def _ag_fed(subject, affine):
    return subject if subject is None or affine is None else _AgFed(subject, *affine)


def probe(images, attacks, epsilon, steps, step_size, decay, batch, budget, fed=None, source_fed=None):
    import time
    start = time.monotonic()
    model, source = _ag_subject(), _ag_source()
    for role, subject in (("model", model), ("source", source)):
        if subject is not None and not isinstance(subject, torch.nn.Module):
            return {"not_module": _what(subject), "role": role}
    modes = [(subject, subject.training) for subject in (model, source) if subject is not None]
    model, source = _ag_fed(model, fed), _ag_fed(source, source_fed)
    device, dtype = _ag_place(model)
    found = {kind: [] for kind in ["clean", *attacks] + (["transfer"] if source is not None else [])}
    done = 0
    try:
        for subject, _ in modes:
            subject.eval()
        for i in range(0, len(images), batch):
            if i and time.monotonic() - start > budget:
                break
            x = torch.as_tensor(images[i:i + batch]).to(device=device, dtype=dtype)
            try:
                predicted = _ag_predict(model, x)
            except _AgNotScores as error:
                return {"not_scores": str(error)}
            found["clean"].append(predicted.cpu())
            for kind in attacks:
                x_adv = _ag_attack(kind, model, x, predicted, epsilon, steps, step_size, decay)
                found[kind].append(_ag_predict(model, x_adv).cpu())
            if source is not None:
                there, kind_of = _ag_place(source)
                crafted = _ag_attack("pgd", source, x.to(device=there, dtype=kind_of), predicted.to(there), epsilon,
                                     steps, step_size, None)
                found["transfer"].append(_ag_predict(model, crafted.to(device=device, dtype=dtype)).cpu())
            done = i + len(x)
    finally:
        for subject, mode in modes:
            subject.train(mode)
    return {"count": done, "seconds": time.monotonic() - start,
            "predictions": {kind: torch.cat(parts).numpy() for kind, parts in found.items()}}
'''


# An attack of the student's, run in the kernel on the grader's network


#: A way of feeding pictures as an affine map per channel: (scales, shifts).
Affine = tuple[tuple[float, ...], tuple[float, ...]]


def _plain(affine: Affine | None) -> list[list[float]] | None:
    return None if affine is None else [[float(v) for v in part] for part in affine]


@dataclass(frozen=True)
class Attempt:
    """What the student's attack gave: the adversarial pictures, and the network's tensors
    whose values the call changed."""

    x_adv: np.ndarray
    changed: list[str]


def _expression(text: str) -> str:
    """A Python expression (the grader's own text, substituted into a probe), checked to parse."""
    compile(text, "<expression>", "eval")
    return text


def _roles(args: Sequence[str], kwargs: Mapping[str, str]) -> None:
    for role in [*args, *kwargs.values()]:
        if role not in ROLES:
            raise ValueError(f"{role!r} is no role; the roles are {', '.join(ROLES)}")
    for key in kwargs:
        if not key.isidentifier():
            raise ValueError(f"{key!r} is not a keyword")


def _function(name: str) -> str:
    if not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"{name!r} is not a name")
    return name


def _call_text(name: str, args: Sequence[str], kwargs: Mapping[str, str]) -> str:
    return f"{name}({', '.join([*args, *(f'{key}={role}' for key, role in kwargs.items())])})"


def run_attack(nb: KernelChannel, name: str, *, epsilon: float, steps: int = STEPS, step_size: float = STEP_SIZE,
               decay: float = DECAY, args: Sequence[str] = ITERATIVE_ARGS, kwargs: Mapping[str, str] | None = None,
               count: int = COUNT, seed: int = 0) -> Attempt:
    """Call the student's ``name`` in the kernel on the grader's network and its first
    ``count`` held-out pictures: ``args`` name the roles passed by position and ``kwargs``
    map keywords to roles (roles: model, x, y, epsilon, steps, step_size, decay). The
    kernel's torch generator is seeded with ``seed`` for the call (a random start is
    repeatable) and restored after. Measured once per grading for the same arguments."""
    kwargs = dict(kwargs or {})
    _roles(args, kwargs)
    weights, images, labels = attack_network()
    images, labels = images[:count], labels[:count]
    numbers = {"epsilon": float(epsilon), "steps": int(steps), "step_size": float(step_size), "decay": float(decay)}
    memo = ("attack", name, tuple(args), tuple(sorted(kwargs.items())), tuple(sorted(numbers.items())), count, seed)
    if memo not in nb.memo:
        source = ATTACK_PROBE.replace("__FUNCTION__", _function(name))
        found = nb.probe(source, dict(weights), images, labels, numbers, list(args), kwargs, seed)
        call = _call_text(name, args, kwargs)
        if "tensorflow" in found:
            raise Referred(f"`{call}` raised {found['tensorflow']} on the grader's network, a PyTorch one, and on "
                           "the same network built with Keras: a marker grades it")
        if "twins" in found:  # a TensorFlow attack, run on the network built with Keras: the stronger run counts
            ran = [twin for twin in found["twins"] if "x_adv" in twin and np.shape(twin["x_adv"]) == images.shape]
            if ran:
                found = max(ran, key=lambda twin: evaluate(np.clip(twin["x_adv"], 0, 1), labels)[1])
            else:
                found = next(twin for twin in found["twins"] if "x_adv" in twin)
        x_adv = found["x_adv"]
        if isinstance(x_adv, dict):
            raise CheckFailed(f"`{call}` should return the adversarial images (a tensor or an array of shape "
                              f"{images.shape}), it returned a {x_adv.get('not_array')}")
        x_adv = as_array(x_adv, f"the adversarial images `{call}` returned", shape=images.shape)
        after = found["weights"]
        changed = [tensor for tensor, value in weights.items()
                   if not isinstance(after.get(tensor), np.ndarray) or after[tensor].shape != value.shape
                   or not np.array_equal(after[tensor], value)]
        nb.memo[memo] = Attempt(x_adv.astype(np.float32), changed)
    return nb.memo[memo]


@dataclass(frozen=True)
class AttackResult:
    """An attack of the student's as the grader measured it on its network: accuracy and mean
    cross-entropy on the adversarial pictures, beside the clean pictures, the grader's own
    attack of the same kind (from x itself, and from a random start: the weaker of the two is
    what the student's must match), and random sign noise of size ε; the largest change of a
    pixel value; for FGSM, the pixel values that differ from the grader's."""

    kind: str
    count: int
    distance: float
    accuracy: float
    loss: float
    reference_accuracy: float
    reference_loss: float
    start_accuracy: float
    start_loss: float
    clean_accuracy: float
    clean_loss: float
    noise_accuracy: float
    noise_loss: float
    differing: int = 0

    @property
    def floor_loss(self) -> float:
        """The loss of the weaker of the grader's two versions of the attack."""
        return min(self.reference_loss, self.start_loss)

    @property
    def ceiling_accuracy(self) -> float:
        return max(self.reference_accuracy, self.start_accuracy)


def _untouched(attempt: Attempt, call: str, total: int) -> None:
    if attempt.changed:
        listed = ", ".join(attempt.changed[:4]) + (", ..." if len(attempt.changed) > 4 else "")
        raise CheckFailed(f"`{call}` changed the model's weights ({len(attempt.changed)} of its {total} tensors: "
                          f"{listed}); an attack must leave the model as it is: take the gradient with respect to "
                          "the input only, and step no optimizer")


def _shape_checks(attempt: Attempt, images: np.ndarray, call: str, epsilon: float) -> float:
    """The verdicts every attack shares: weights unchanged, the images changed, within [0, 1]
    and within the ε-ball. Returns the largest change of a pixel value."""
    weights, _, _ = attack_network()
    _untouched(attempt, call, len(weights))
    x_adv = attempt.x_adv.astype(np.float64)
    if not np.all(np.isfinite(x_adv)):
        raise CheckFailed(f"`{call}` returned images with {int((~np.isfinite(x_adv)).sum())} values that are NaN "
                          "or infinite (a division by a zero gradient norm?)")
    delta = np.abs(x_adv - images)
    if float(delta.max()) == 0:
        raise CheckFailed(f"`{call}` returned the images unchanged: x_adv equals x")
    low, high = float(x_adv.min()), float(x_adv.max())
    if low < -1e-6 or high > 1 + 1e-6:
        outside = int(((x_adv < -1e-6) | (x_adv > 1 + 1e-6)).sum())
        raise CheckFailed(f"`{call}` returned {outside} pixel values outside [0, 1] (from {low:.4g} to {high:.4g}): "
                          "clip the adversarial images to the valid range [0, 1]")
    distance = float(delta.max())
    if distance > epsilon + 1e-6:
        beyond = int((delta > epsilon + 1e-6).sum())
        raise CheckFailed(f"`{call}` moved {beyond} pixel values by more than epsilon = {epsilon:g} (up to "
                          f"{distance:.4g}): project x_adv back onto the epsilon-ball around x, "
                          "clip(x_adv, x - epsilon, x + epsilon), after every step")
    return distance


def _measured(kind: str, attempt: Attempt, count: int, *, epsilon: float, steps: int, step_size: float,
              decay: float, distance: float, differing: int = 0) -> AttackResult:
    _, images, labels = attack_network()
    images, labels = images[:count], labels[:count]
    settings = (float(epsilon), int(steps), float(step_size), float(decay))
    reference_accuracy, reference_loss = evaluate(_grader_attack(kind, count, *settings, None), labels)
    start_accuracy, start_loss = (reference_accuracy, reference_loss) if kind == "fgsm" else evaluate(
        _grader_attack(kind, count, *settings, _SEED), labels)
    accuracy, loss = evaluate(attempt.x_adv, labels)
    clean_accuracy, clean_loss = evaluate(images, labels)
    noise_accuracy, noise_loss = evaluate(sign_noise(images, epsilon), labels)
    return AttackResult(kind, count, distance, accuracy, loss, reference_accuracy, reference_loss, start_accuracy,
                        start_loss, clean_accuracy, clean_loss, noise_accuracy, noise_loss, differing)


#: The share of pixel values an FGSM may differ from the grader's in, beside those whose
#: gradient is zero or float noise (sign flips of gradients near zero).
FGSM_SLACK = 0.001


def expect_fgsm(nb: KernelChannel, name: str, epsilon: float = EPSILON, *, args: Sequence[str] = FGSM_ARGS,
                kwargs: Mapping[str, str] | None = None, count: int = COUNT, seed: int = 0) -> AttackResult:
    """Fail unless the student's ``name`` computes FGSM, clip(x + ε·sign(∇x CE(model(x), y)), 0, 1),
    on the grader's network: equal to the grader's up to pixels whose gradient is float noise
    and a share ``FGSM_SLACK`` of the rest. Returns what was measured (``differing``: the
    pixel values that differ)."""
    attempt = run_attack(nb, name, epsilon=epsilon, args=args, kwargs=kwargs, count=count, seed=seed)
    call = _call_text(name, args, dict(kwargs or {}))
    _, images, labels = attack_network()
    images, labels = images[:count], labels[:count]
    distance = _shape_checks(attempt, images, call, epsilon)
    want = _grader_attack("fgsm", count, float(epsilon), STEPS, STEP_SIZE, DECAY, None)
    grad = gradient(images, labels)
    scale = np.abs(grad).reshape(len(grad), -1).max(axis=1).reshape(-1, 1, 1, 1)
    noise = np.abs(grad) <= 1e-6 * scale  # a sign here is float noise, as is a zero
    wrong = np.abs(attempt.x_adv.astype(np.float64) - want) > 1e-5
    differing = int((wrong & ~noise).sum())
    result = _measured("fgsm", attempt, count, epsilon=epsilon, steps=STEPS, step_size=STEP_SIZE, decay=DECAY,
                       distance=distance, differing=differing)
    if differing <= FGSM_SLACK * want.size:
        return result
    descending = np.clip(images - np.float32(epsilon) * np.sign(grad), 0, 1)
    if (np.abs(attempt.x_adv - descending) > 1e-5).mean() < 0.01:
        raise CheckFailed(f"`{call}` steps down the gradient, x - epsilon * sign(grad), which lowers the loss "
                          f"(mean cross-entropy {result.loss:.3f}, clean images {result.clean_loss:.3f}); FGSM "
                          "steps up it: x + epsilon * sign(grad of the loss with respect to x)")
    raise CheckFailed(
        f"`{call}` is not FGSM, clip(x + epsilon * sign(grad of the cross-entropy of model(x) and y with respect "
        f"to x), 0, 1): {differing} of {want.size} pixel values differ from the grader's on {len(labels)} images "
        f"({100 * differing / want.size:.1f}%; at most {100 * FGSM_SLACK:g}% may, beside those where the gradient "
        f"is zero); its mean cross-entropy is {result.loss:.3f}, the grader's FGSM {result.reference_loss:.3f}")


#: How strong an iterative attack must be, against the weaker of the grader's two versions
#: of the same attack (from x, from a random start).
LOSS_SHARE = 0.9
ACCURACY_SLACK = 0.05


def expect_iterative_attack(nb: KernelChannel, name: str, kind: str = "pgd", epsilon: float = EPSILON,
                            steps: int = STEPS, step_size: float = STEP_SIZE, *, decay: float = DECAY,
                            args: Sequence[str] = ITERATIVE_ARGS, kwargs: Mapping[str, str] | None = None,
                            count: int = COUNT, seed: int = 0) -> AttackResult:
    """Fail unless the student's ``name`` (kind "pgd" or "mim") is a working L∞ attack: within
    ε of x and within [0, 1] everywhere, the model's weights unchanged, mean cross-entropy at
    least ``LOSS_SHARE`` of the grader's same attack's, accuracy at most the grader's plus
    ``ACCURACY_SLACK``, and loss clearly above random sign noise of size ε (more than half way
    from the noise's loss to the grader's). The grader's attack is run from x and from a
    random start, and the weaker counts: either start is accepted. Returns the numbers."""
    if kind not in ("pgd", "mim"):
        raise ValueError(f"attack {kind!r}: pgd or mim")
    attempt = run_attack(nb, name, epsilon=epsilon, steps=steps, step_size=step_size, decay=decay, args=args,
                         kwargs=kwargs, count=count, seed=seed)
    call = _call_text(name, args, dict(kwargs or {}))
    _, images, _ = attack_network()
    distance = _shape_checks(attempt, images[:count], call, epsilon)
    result = _measured(kind, attempt, count, epsilon=epsilon, steps=steps, step_size=step_size, decay=decay,
                       distance=distance)
    label = kind.upper()
    measured = (f"on the grader's network and {count} images its mean cross-entropy is {result.loss:.3f} and its "
                f"accuracy {result.accuracy:.3f}; the grader's {label} ({steps} steps of {step_size:g}) reaches "
                f"{result.reference_loss:.3f} and {result.reference_accuracy:.3f} ({result.start_loss:.3f} and "
                f"{result.start_accuracy:.3f} from a random start), random sign noise of size {epsilon:g} "
                f"{result.noise_loss:.3f} and {result.noise_accuracy:.3f}, the clean images {result.clean_loss:.3f} "
                f"and {result.clean_accuracy:.3f}")
    hint = (f"does it take all {steps} steps of size {step_size:g}, each up the gradient of the loss (along its "
            "sign), projecting after each?")
    if kind == "mim":
        hint += (" MIM accumulates g = decay * g + grad / ||grad||_1 (the L1 norm of each image's own gradient) "
                 "and steps along sign(g)")
    if result.loss <= result.noise_loss + 0.5 * (result.floor_loss - result.noise_loss):
        raise CheckFailed(f"`{call}` is hardly stronger than random noise: {measured}; {hint}")
    if result.loss < LOSS_SHARE * result.floor_loss:
        raise CheckFailed(f"`{call}` is weaker than {label} should be (mean cross-entropy below {LOSS_SHARE:g} of "
                          f"the grader's): {measured}; {hint}")
    if result.accuracy > result.ceiling_accuracy + ACCURACY_SLACK:
        raise CheckFailed(f"`{call}` leaves too many images classified correctly (more than {ACCURACY_SLACK:g} "
                          f"above the grader's {label}): {measured}; {hint}")
    return result


# Robust accuracy of a student's model


@dataclass(frozen=True)
class Robustness:
    """A model's accuracy on ``count`` images, clean and under each attack; an image counts
    as robust to an attack when it is classified correctly both clean and attacked. ``worst``
    counts the images that every attack (the transfer included) left correct."""

    count: int
    clean: float
    attacked: dict[str, float]
    worst: float
    seconds: float

    def weakest(self) -> str:
        """The attack that left the fewest images correct."""
        return min(self.attacked, key=lambda kind: self.attacked[kind])


def robust_accuracy(nb: KernelChannel, model: str, images: np.ndarray, labels: np.ndarray, *,
                    epsilon: float = EPSILON, steps: int = STEPS, step_size: float = STEP_SIZE,
                    decay: float = DECAY, attacks: Sequence[str] = KINDS, transfer_from: str | None = None,
                    batch: int = 64, budget: float = 120.0, timeout: float | None = None,
                    classes: int | None = None, fed: Affine | None = None,
                    transfer_fed: Affine | None = None) -> Robustness:
    """The accuracy of the notebook's ``model`` (a name) on ``images`` (N x C x H x W float32
    in [0, 1]), clean and under the grader's ``attacks``, in eval mode on the model's own
    device, its mode restored after. ``labels`` stay here: the attacks in the kernel use the
    model's own predictions as targets. With ``transfer_from`` (another model's name) PGD
    examples crafted on that model are given to ``model`` too ("transfer"), and count in the
    worst case. The kernel starts no batch after ``budget`` seconds (the first always runs):
    the accuracies are then over the images it attacked (``count``). Measured once per
    grading for the same arguments. ``fed`` (and ``transfer_fed``, for ``transfer_from``) is
    the way the model takes its pictures, an affine map per channel from pixels in [0, 1]
    (``inputs.Way.affine``): the grader attacks the pixels, in front of that map, so epsilon
    stays the handout's in pixels whatever scale the notebook feeds its network."""
    for kind in attacks:
        if kind not in KINDS:
            raise ValueError(f"attack {kind!r}: one of {', '.join(KINDS)}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or len(images) != len(labels) or not len(images):
        raise ValueError(f"images N x C x H x W with one label each; got {images.shape} and {labels.shape}")
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    key = ("robust", model, transfer_from, tuple(attacks), float(epsilon), int(steps), float(step_size),
           float(decay), digest, batch, fed, transfer_fed)
    if key not in nb.memo:
        source = (ROBUST_PROBE.replace("__MODEL__", _expression(model))
                  .replace("__SOURCE__", "None" if transfer_from is None else _expression(transfer_from)))
        limit = timeout if timeout is not None else max(nb.timeout, 2 * budget + 60)
        started = time.monotonic()
        found = nb.probe(source, images, list(attacks), float(epsilon), int(steps), float(step_size), float(decay),
                         int(batch), float(budget), _plain(fed), _plain(transfer_fed), timeout=limit)
        nb.memo[key] = (found, time.monotonic() - started)
    found, seconds = nb.memo[key]
    if "not_module" in found:
        subject = model if found.get("role") == "model" else transfer_from
        raise not_a_module(str(subject), found["not_module"], "the grader's attacks, which take a PyTorch network's "
                           "gradients")
    if "not_scores" in found:
        raise CheckFailed(f"`{model}` should give class scores of shape (batch, classes); it gave "
                          f"{found['not_scores']}")
    count = int(found["count"])
    truth = labels[:count]
    predicted: dict[str, np.ndarray] = {}
    for kind, values in found["predictions"].items():
        array = as_array(values, f"the predictions of `{model}`", shape=(count,), dtype_kinds="iu")
        if classes is not None and (array.min(initial=0) < 0 or array.max(initial=0) >= classes):
            raise CheckFailed(f"`{model}` should give {classes} class scores per image; it predicted class "
                              f"{int(array.max())}")
        predicted[kind] = array
    right = predicted["clean"] == truth
    survived = {kind: right & (predicted[kind] == truth) for kind in predicted if kind != "clean"}
    worst = np.logical_and.reduce([right, *survived.values()])
    return Robustness(count, float(right.mean()), {kind: float(ok.mean()) for kind, ok in survived.items()},
                      float(worst.mean()), float(seconds))


__all__ = [
    "ACCURACY_SLACK", "COUNT", "DECAY", "EPSILON", "FGSM_ARGS", "FGSM_SLACK", "ITERATIVE_ARGS", "KINDS",
    "LOSS_SHARE", "STEPS", "STEP_SIZE", "Attempt", "AttackResult", "Robustness", "attack_network",
    "evaluate", "expect_fgsm", "expect_iterative_attack", "gradient", "network", "reference",
    "robust_accuracy", "run_attack", "sign_noise",
]
