"""Two generic check helpers proven end to end, through a rubric, real kernels, the pytest
plugin and the score stage: the toy network assignment graded with three more items, an
FGSM and a PGD attack (autograder.checks.attacks, run on the grader's own network) and a
``predict(model, X)`` function (autograder.checks.training.predict_codes, compared with the
grader's own run of the same model). The correct copy earns every item; a broken copy (FGSM
not clipped to [0, 1], PGD not projected onto the epsilon-ball, class codes shifted by one)
loses exactly those three, each with its reason; a ``predict`` that returns per-class
probabilities as a torch tensor, not codes, keeps its point."""

from __future__ import annotations

import json
import re
from pathlib import Path

from autograder.authoring.verify import Verification

from .conftest import grade_toynet, toynet_with

ADDED = ("fgsm", "pgd", "predict")

# The cell the toy solution gains: the handout's attacks (FIT3181), and predict.
ATTACKS = '''
import torch.nn.functional as F


def fgsm_attack(model, x, y, epsilon):
    x = x.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    x_adv = x + epsilon * x.grad.sign()
    return torch.clamp(x_adv, 0, 1).detach()


def pgd_attack(model, x, y, epsilon, num_steps, step_size):
    x_adv = x.clone().detach()
    for _ in range(num_steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        model.zero_grad()
        loss.backward()
        x_adv = x_adv.detach() + step_size * x_adv.grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon)
        x_adv = torch.clamp(x_adv, 0, 1)
    return x_adv.detach()


def predict(model, X):
    with torch.no_grad():
        scores = model(torch.as_tensor(X, dtype=torch.float32))
    return scores.argmax(1).numpy()
'''

CHECK = '''
import pytest

from autograder.checking import CheckFailed
from autograder.checks.attacks import FGSM_ARGS, ITERATIVE_ARGS, expect_fgsm, expect_iterative_attack
from autograder.checks.training import predict_codes, predictions

TEST = 'load(DATA_DIR)["x_test"]'


@pytest.mark.item("fgsm")
def test_fgsm(nb):
    expect_fgsm(nb, "fgsm_attack", args=FGSM_ARGS)


@pytest.mark.item("pgd")
def test_pgd(nb):
    expect_iterative_attack(nb, "pgd_attack", "pgd", args=ITERATIVE_ARGS)


@pytest.mark.item("predict")
def test_predict(nb, assignment, data):
    count = len(assignment.dataset("toy-blobs").visible(data.source)["x_test"])
    codes = predict_codes(nb, "predict", "net", TEST, count=count, classes=3, what="the test points")
    own = predictions(nb, "net", TEST, count=count, classes=3)
    wrong = int((codes != own).sum())
    if wrong:
        raise CheckFailed(f"`predict(net, X)` disagrees with net's own predictions on {wrong} of {count} test "
                          "points")
'''

ITEMS = '''      - {id: fgsm, title: "fgsm_attack is FGSM", points: 1}
      - {id: pgd, title: "pgd_attack is PGD", points: 1}
      - {id: predict, title: "predict(net, X) gives net's classes", points: 1}
'''


def _changed(text: str, *swaps: tuple[str, str]) -> str:
    for old, new in swaps:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


UNCLIPPED = ("return torch.clamp(x_adv, 0, 1).detach()", "return x_adv.detach()")
UNPROJECTED = ("        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon)\n", "")
SHIFTED = ("return scores.argmax(1).numpy()", "return ((scores.argmax(1) + 1) % 3).numpy()")
PROBABILITIES = ("return scores.argmax(1).numpy()", "return torch.softmax(scores, dim=1)")


def test_the_toy_assignment_graded_with_attack_and_predict_items(tmp_path: Path):
    target = toynet_with(tmp_path / "assignment", "check_generic.py", CHECK, ITEMS, 13)
    assert [item.id for item in target.rubric.questions[0].items][-3:] == list(ADDED)

    found, grade = grade_toynet(target, tmp_path / "jane", ATTACKS)
    assert {item: status for item, (status, _, _) in found.items()} == dict.fromkeys(found, "passed"), found
    assert set(ADDED) <= set(found)
    assert Verification(grade, 1.0).complete
    record = json.loads((tmp_path / "results" / "jane" / "grade.json").read_text(encoding="utf-8"))
    assert record["totals"]["auto_points"] == record["totals"]["auto_max"] == 13.0

    found, _ = grade_toynet(target, tmp_path / "john", _changed(ATTACKS, UNCLIPPED, UNPROJECTED, SHIFTED))
    lost = {item for item, (status, _, _) in found.items() if status != "passed"}
    assert lost == set(ADDED), found
    reasons = {
        "fgsm": "`fgsm_attack(model, x, y, epsilon)` returned ",
        "pgd": "by more than epsilon = 0.0313",
        "predict": "`predict(net, X)` disagrees with net's own predictions on ",
    }
    for item, fragment in reasons.items():
        status, points, reason = found[item]
        assert status == "failed" and points == 0 and fragment in reason, (item, found[item])
    assert "pixel values outside [0, 1]" in found["fgsm"][2] and "project x_adv back" in found["pgd"][2]
    assert re.search(r"on (\d+) of \1 test points$", found["predict"][2]), found["predict"]  # every code is off

    found, _ = grade_toynet(target, tmp_path / "jim", _changed(ATTACKS, PROBABILITIES))
    assert {item: status for item, (status, _, _) in found.items()} == dict.fromkeys(found, "passed"), found
    assert found["predict"][1] == 1.0
