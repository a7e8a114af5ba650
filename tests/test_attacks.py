"""The adversarial-attack checks (autograder.checks.attacks), proven both ways in a real
kernel: attacks written correctly, or correctly another way, pass; each broken one fails
with its reason. The robust-accuracy probe on a plain model and on one whose gradient is
masked (it looks robust until examples transferred from its unmasked twin are counted),
without the labels ever crossing into the kernel."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from autograder.checking import CheckFailed
from autograder.checks.attacks import (
    EPSILON,
    attack_network,
    evaluate,
    expect_fgsm,
    expect_iterative_attack,
    reference,
    robust_accuracy,
    run_attack,
    sign_noise,
)
from autograder.grading.channel import KernelChannel

from .conftest import notebook, start_live

ATTACKS = '''
import numpy as np
import torch
import torch.nn.functional as F


def fgsm(model, x, y, epsilon):
    x = x.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    return torch.clamp(x + epsilon * x.grad.sign(), 0, 1).detach()


def fgsm_numpy(model, images, labels, eps=0.1):
    model.eval()
    images = images.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(images), labels, reduction="sum"), images)
    return np.clip(images.detach().numpy() + eps * np.sign(grad.numpy()), 0, 1)


def fgsm_descending(model, x, y, epsilon):
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    return torch.clamp(x - epsilon * x.grad.sign(), 0, 1).detach()


def fgsm_unclipped(model, x, y, epsilon):
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    return (x + epsilon * x.grad.sign()).detach()


def fgsm_predicted(model, x, y, epsilon):
    return fgsm(model, x, model(x).argmax(1), epsilon)


def unchanged(model, x, y, *rest):
    return x.clone()


def nothing(model, x, y, *rest):
    return None


def pgd(model, x, y, epsilon, num_steps, step_size):
    x_adv = x.clone().detach()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        model.zero_grad()
        loss.backward()
        x_adv = x_adv.detach() + step_size * x_adv.grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
    return x_adv


def pgd_random_start(model, x, y, epsilon, num_steps, step_size):
    x_adv = (x + torch.empty_like(x).uniform_(-epsilon, epsilon)).clamp(0, 1)
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        F.cross_entropy(model(x_adv), y).backward()
        x_adv = x_adv.detach() + step_size * x_adv.grad.sign()
        x_adv = torch.clamp(torch.clamp(x_adv, x - epsilon, x + epsilon), 0, 1)
    return x_adv


def pgd_autograd(model, x, y, epsilon=0.0313, num_steps=20, step_size=0.002):
    model.eval()
    x0 = x.numpy()
    x_adv = x.clone()
    for _ in range(num_steps):
        x_adv = x_adv.detach().requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), y), [x_adv])
        stepped = x_adv.detach().numpy() + step_size * np.sign(grad.numpy())
        x_adv = torch.tensor(np.clip(np.clip(stepped, x0 - epsilon, x0 + epsilon), 0, 1))
    return x_adv.numpy()


def pgd_unprojected(model, x, y, epsilon, num_steps, step_size):
    x_adv = x.clone()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        F.cross_entropy(model(x_adv), y).backward()
        x_adv = (x_adv.detach() + step_size * x_adv.grad.sign()).clamp(0, 1)
    return x_adv


def pgd_one_step(model, x, y, epsilon, num_steps, step_size):
    x_adv = x.clone().requires_grad_(True)
    F.cross_entropy(model(x_adv), y).backward()
    return torch.min(torch.max(x_adv + step_size * x_adv.grad.sign(), x - epsilon), x + epsilon).clamp(0, 1).detach()


def pgd_optimizer(model, x, y, epsilon, num_steps, step_size):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x_adv = x.clone()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        optimizer.zero_grad()
        F.cross_entropy(model(x_adv), y).backward()
        optimizer.step()
        x_adv = x_adv.detach() + step_size * x_adv.grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
    return x_adv


def mim(model, x, y, epsilon, num_steps, step_size, decay=1.0, scale=torch.sum):
    g = torch.zeros_like(x)
    x_adv = x.clone()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        g = decay * g + grad / scale(grad.abs(), dim=(1, 2, 3), keepdim=True)
        x_adv = x_adv.detach() + step_size * g.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
    return x_adv


def mim_mean(model, x, y, epsilon, num_steps, step_size):
    return mim(model, x, y, epsilon, num_steps, step_size, scale=torch.mean)


def mim_unnormalised(model, x, y, epsilon, num_steps, step_size, decay=1.0):
    g = torch.zeros_like(x)
    x_adv = x.clone()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        F.cross_entropy(model(x_adv), y).backward()
        g = decay * g + x_adv.grad
        x_adv = (x_adv.detach() + step_size * g.sign()).clamp(0, 1)
    return x_adv
'''

MODELS = '''
import copy
from torch import nn

weights = np.load(f"{FOLDER}/attack_net.npz")
plain = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
)
plain.load_state_dict({name: torch.tensor(weights[name]) for name in weights.files})


class Blind(torch.autograd.Function):
    """The identity forward, no gradient backward: attacks that follow the gradient stall."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


class Masked(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(Blind.apply(x))


class Centred(nn.Module):
    """``plain`` for pictures centred on 0.5 ([-1, 1], as Normalize((0.5,) * 3, (0.5,) * 3) gives them)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner((x + 1) / 2)


masked = Masked(copy.deepcopy(plain))
centred = Centred(copy.deepcopy(plain))
plain.train()
'''

PGD_CALL = ("model", "x", "y", "epsilon", "steps", "step_size")


@pytest.fixture(scope="module")
def nb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelChannel]:
    folder = tmp_path_factory.mktemp("attacks")
    weights, _, _ = attack_network()
    np.savez(folder / "attack_net.npz", **weights)
    live = start_live(notebook(ATTACKS, MODELS, parameters=f"FOLDER = {str(folder)!r}"), folder, total_timeout=120)
    try:
        yield KernelChannel(live, timeout=120)
    finally:
        live.shutdown()


def test_the_graders_network_has_margins_an_attack_is_measured_against():
    _, images, labels = attack_network()
    images, labels = images[:64], labels[:64]
    clean, clean_loss = evaluate(images, labels)
    fgsm, fgsm_loss = evaluate(reference("fgsm", images, labels, epsilon=EPSILON), labels)
    pgd, pgd_loss = evaluate(reference("pgd", images, labels, epsilon=EPSILON), labels)
    noise, noise_loss = evaluate(sign_noise(images, EPSILON), labels)
    assert images.shape == (64, 3, 32, 32) and images.dtype == np.float32 and 0 <= images.min() < images.max() <= 1
    assert clean >= 0.75 and noise >= clean - 0.05 and noise_loss < clean_loss + 0.1
    assert fgsm <= clean - 0.2 and pgd <= fgsm and pgd_loss > fgsm_loss > clean_loss + 0.5


@pytest.mark.parametrize(("name", "kwargs"), [
    ("fgsm", {}),
    ("fgsm_numpy", {"args": ("model", "x", "y"), "kwargs": {"eps": "epsilon"}}),  # numpy out, eval mode, keywords
])
def test_fgsm_written_either_way_is_the_graders(nb: KernelChannel, name: str, kwargs: dict[str, Any]):
    result = expect_fgsm(nb, name, **kwargs)
    assert result.differing <= 0.001 * 64 * 3 * 32 * 32
    assert result.loss == pytest.approx(result.reference_loss, abs=1e-3)
    assert result.distance == pytest.approx(EPSILON, abs=1e-6)


@pytest.mark.parametrize(("name", "reason"), [
    ("fgsm_descending", "steps down the gradient"),
    ("fgsm_unclipped", "pixel values outside [0, 1]"),
    ("fgsm_predicted", "is not FGSM"),
    ("unchanged", "returned the images unchanged"),
    ("nothing", "should return the adversarial images"),
])
def test_a_broken_fgsm_fails_with_its_reason(nb: KernelChannel, name: str, reason: str):
    with pytest.raises(CheckFailed, match=reason.replace("[", r"\[").replace("]", r"\]")):
        expect_fgsm(nb, name)


@pytest.mark.parametrize(("name", "kind", "kwargs"), [
    ("pgd", "pgd", {}),
    ("pgd_random_start", "pgd", {}),
    ("pgd_autograd", "pgd", {"args": ("model", "x", "y"),  # numpy out, eval mode, keywords
                             "kwargs": {"epsilon": "epsilon", "num_steps": "steps", "step_size": "step_size"}}),
    ("mim", "mim", {"args": (*PGD_CALL, "decay")}),
    ("mim_mean", "mim", {}),
])
def test_an_iterative_attack_written_another_way_passes(nb: KernelChannel, name: str, kind: str,
                                                       kwargs: dict[str, Any]):
    result = expect_iterative_attack(nb, name, kind, **kwargs)
    assert result.distance <= EPSILON + 1e-6
    assert result.loss >= 0.9 * result.floor_loss and result.accuracy < result.noise_accuracy - 0.2


@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("pgd_unprojected", "pgd", "by more than epsilon = 0.0313"),
    ("pgd_one_step", "pgd", "hardly stronger than random noise"),
    ("pgd_optimizer", "pgd", "changed the model's weights"),
    ("unchanged", "pgd", "returned the images unchanged"),
    ("mim_unnormalised", "mim", "by more than epsilon"),
])
def test_a_broken_iterative_attack_fails_with_its_reason(nb: KernelChannel, name: str, kind: str, reason: str):
    with pytest.raises(CheckFailed, match=reason):
        expect_iterative_attack(nb, name, kind)


class Recorded:
    """The channel's probe, recording every argument that crosses into the kernel."""

    def __init__(self, nb: KernelChannel) -> None:
        self.nb = nb
        self.sent: list[Any] = []

    def __call__(self, source: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.extend([*args, *kwargs.values()])
        return KernelChannel.probe(self.nb, source, *args, **kwargs)


def _robust(nb: KernelChannel, monkeypatch: pytest.MonkeyPatch, model: str, **options: Any):
    _, images, labels = attack_network()
    images, labels = images[:64], labels[:64]
    recorded = Recorded(nb)
    monkeypatch.setattr(nb, "probe", recorded)
    found = robust_accuracy(nb, model, images, labels, **options)
    monkeypatch.undo()
    assert any(isinstance(value, np.ndarray) and np.array_equal(value, images) for value in recorded.sent)
    for value in recorded.sent:  # the labels never cross: no integer array, nothing of their shape
        assert not (isinstance(value, np.ndarray) and value.dtype.kind in "iu"), value
        assert not (isinstance(value, (list, tuple, np.ndarray)) and np.shape(value) == labels.shape), value
    return found


def test_robust_accuracy_measures_a_plain_model_against_itself(nb: KernelChannel, monkeypatch: pytest.MonkeyPatch):
    found = _robust(nb, monkeypatch, "plain", transfer_from="plain")
    assert found.count == 64 and set(found.attacked) == {"fgsm", "pgd", "mim", "transfer"}
    _, images, labels = attack_network()
    assert found.clean == pytest.approx(evaluate(images[:64], labels[:64])[0])
    assert found.attacked["pgd"] <= found.attacked["fgsm"] <= found.clean - 0.2
    assert found.attacked["transfer"] == found.attacked["pgd"]  # crafted on the model itself
    assert found.worst <= min(found.attacked.values())
    assert nb.get("plain.training") is True  # its mode restored
    state = nb.probe("def probe():\n    return [plain.state_dict(), [p.grad is None for p in plain.parameters()]]")
    weights, _, _ = attack_network()
    assert all(np.array_equal(state[0][name], value) for name, value in weights.items()) and all(state[1])


def test_a_masked_gradient_looks_robust_until_transferred_examples_count(nb: KernelChannel,
                                                                       monkeypatch: pytest.MonkeyPatch):
    blind = _robust(nb, monkeypatch, "masked")
    assert blind.attacked == {"fgsm": blind.clean, "pgd": blind.clean, "mim": blind.clean} and blind.clean >= 0.75
    found = _robust(nb, monkeypatch, "masked", transfer_from="plain", attacks=("pgd",))
    assert found.attacked["pgd"] == found.clean and found.attacked["transfer"] <= found.clean - 0.2
    assert found.worst == found.attacked["transfer"] and found.weakest() == "transfer"


def test_a_network_fed_centred_pictures_is_attacked_in_pixels_in_front_of_its_way(nb: KernelChannel,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    """``fed`` puts the way a network takes its pictures (here centred on 0.5) between the
    attacked pixels and the network: measured so, it is exactly ``plain`` under the same
    attacks with the handout's epsilon in pixels; fed the pixels themselves it is not."""
    plain = _robust(nb, monkeypatch, "plain", attacks=("fgsm", "pgd"))
    fed = _robust(nb, monkeypatch, "centred", attacks=("fgsm", "pgd"), fed=((2.0,) * 3, (-1.0,) * 3))
    assert (fed.clean, fed.attacked, fed.worst) == (plain.clean, plain.attacked, plain.worst)
    unfed = _robust(nb, monkeypatch, "centred", attacks=("fgsm", "pgd"))
    assert unfed.clean <= plain.clean - 0.2


def test_robust_accuracy_starts_no_batch_past_its_budget(nb: KernelChannel, monkeypatch: pytest.MonkeyPatch):
    found = _robust(nb, monkeypatch, "masked", attacks=("fgsm",), batch=16, budget=0)
    assert found.count == 16 and found.attacked["fgsm"] == found.clean


def test_the_notebooks_random_generator_is_left_as_it_was(nb: KernelChannel):
    """The student's attack runs with a seeded generator (a random start is repeatable), and
    the notebook's generator is restored after."""
    state = "def probe():\n    return torch.get_rng_state()"
    before = nb.probe(state)
    first = run_attack(nb, "pgd_random_start", epsilon=EPSILON, count=8, seed=5)
    assert np.array_equal(nb.probe(state), before)
    nb.memo.clear()
    assert np.array_equal(run_attack(nb, "pgd_random_start", epsilon=EPSILON, count=8, seed=5).x_adv, first.x_adv)


def test_robust_accuracy_refuses_what_is_no_model(nb: KernelChannel, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(CheckFailed, match="`np` should be a torch.nn.Module, is a builtins.module"):
        _robust(nb, monkeypatch, "np", attacks=("fgsm",))


def test_the_network_is_trained_once_and_read_back_in_another_process():
    """The cache is a file: a fresh process reads the same arrays, well under a second."""
    weights, images, labels = attack_network()
    assert not images.flags.writeable and labels.dtype == np.int64 and set(labels) == set(range(10))
    assert {name: value.shape for name, value in weights.items()} == {
        "0.weight": (16, 3, 3, 3), "0.bias": (16,), "3.weight": (32, 16, 3, 3), "3.bias": (32,),
        "7.weight": (10, 2048), "7.bias": (10,)}
    script = ("import hashlib, time\nfrom autograder.checks.attacks import attack_network\nstart = time.monotonic()\n"
              "weights, images, labels = attack_network()\nseconds = time.monotonic() - start\n"
              "digest = hashlib.sha256(b''.join(v.tobytes() for v in [*weights.values(), images, labels]))\n"
              "print(digest.hexdigest(), seconds)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    digest, seconds = done.stdout.split()
    here = hashlib.sha256(b"".join(v.tobytes() for v in [*weights.values(), images, labels])).hexdigest()
    assert digest == here and float(seconds) < 1, done.stdout
