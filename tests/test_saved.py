"""The saved-model-file checks (autograder.checks.saved), proven both ways in a real kernel
whose working directory holds the files a student submitted: a file under ./models passes
however its path is written; a path outside the folder (absolute, climbing out with '..',
or a link in the folder to a file elsewhere), a missing file and an empty one fail with
their reasons; a loader that raises or returns no module fails, one that returns a module
passes. Then the toy network assignment graded end to end with an item for its saved model,
and a copy that saved the model to /tmp losing exactly that item."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.authoring.verify import Verification
from autograder.checking import CheckFailed
from autograder.checks.attacks import robust_accuracy
from autograder.checks.saved import SavedFile, expect_loadable, loaded_expression, saved_file
from autograder.grading.channel import KernelChannel

from .conftest import grade_toynet, notebook, start_live, toynet_with

NAMES = '''
import os
import pathlib

import torch
from torch import nn

RELATIVE = "models/good.pt"
AS_PATH = pathlib.Path("models") / "good.pt"
ABSOLUTE = os.path.abspath("models/good.pt")
NESTED = "./models/../models/good.pt"
IN_TMP = OUTSIDE
CLIMBING = "../outside.pt"
LINKED = "models/linked.pt"
MISSING = "models/missing.pt"
EMPTY = "models/empty.pt"
FOLDER = "models"
BLANK = ""
NUMBER = 3
CONV = "models/conv.pt"


def make():
    return nn.Linear(4, 2)


def load_model(path):
    model = make()
    model.load_state_dict(torch.load(path))
    return model


def load_state(path):
    return torch.load(path)


def load_raising(path):
    raise RuntimeError("Error(s) in loading state_dict for Linear:\\n\\tsize mismatch for weight " + "x" * 400)


def load_conv(path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    model.load_state_dict(torch.load(path))
    return model.eval()


NOT_A_LOADER = 7
'''


@pytest.fixture(scope="module")
def nb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelChannel]:
    """A kernel whose working directory is a submission: models/ with a saved model, an
    empty file and a link to a model outside; beside the submission, a model outside it."""
    root = tmp_path_factory.mktemp("saved")
    folder = root / "submission"
    (folder / "models").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), folder / "models" / "good.pt")
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)).state_dict(),
               folder / "models" / "conv.pt")
    (folder / "models" / "empty.pt").touch()
    outside = root / "outside.pt"
    shutil.copyfile(folder / "models" / "good.pt", outside)
    (folder / "models" / "linked.pt").symlink_to(outside)
    live = start_live(notebook(NAMES, parameters=f"OUTSIDE = {str(outside)!r}"), folder, total_timeout=120)
    try:
        yield KernelChannel(live, timeout=60)
    finally:
        live.shutdown()


@pytest.mark.parametrize("name", ["RELATIVE", "AS_PATH", "ABSOLUTE", "NESTED"])
def test_a_file_under_models_passes_however_its_path_is_written(nb: KernelChannel, name: str):
    found = saved_file(nb, name)
    assert isinstance(found, SavedFile) and found.path == "models/good.pt" and found.size > 100


@pytest.mark.parametrize(("name", "reason"), [
    ("IN_TMP", r"^`IN_TMP` is '/.+/outside\.pt', outside \./models: save the model under \./models, as the "
               r"handout asks$"),
    ("CLIMBING", r"^`CLIMBING` is '\.\./outside\.pt', outside \./models: save the model under \./models"),
    ("LINKED", r"^`LINKED` is 'models/linked\.pt', a link to '/.+/outside\.pt', outside \./models: save the "
               r"model file itself under \./models"),
    ("MISSING", r"^`MISSING` is 'models/missing\.pt', which does not exist: save the trained model there and "
                r"submit the file with the notebook$"),
    ("EMPTY", r"^`EMPTY` is 'models/empty\.pt', an empty file \(0 bytes\): the model was not saved into it$"),
    ("FOLDER", r"^`FOLDER` is 'models', a directory: it should name the saved model file$"),
    ("BLANK", r"^`BLANK` is an empty string, which names no file"),
    ("NUMBER", r"^`NUMBER` should be the path of the saved model file \(a str or a pathlib\.Path\), is a "
               r"builtins\.int$"),
])
def test_a_path_that_names_no_saved_file_under_models_fails_with_its_reason(nb: KernelChannel, name: str,
                                                                            reason: str):
    with pytest.raises(CheckFailed, match=reason):
        saved_file(nb, name)


def test_another_folder_is_the_one_required(nb: KernelChannel):
    with pytest.raises(CheckFailed, match=r"outside \./models/sub: save the model under \./models/sub"):
        saved_file(nb, "RELATIVE", folder="models/sub")
    assert saved_file(nb, "RELATIVE", folder=".") == saved_file(nb, "RELATIVE")
    with pytest.raises(CheckFailed, match="outside the submission's folder"):
        saved_file(nb, "CLIMBING", folder=".")


@pytest.mark.parametrize(("call", "problem"), [
    (lambda nb: saved_file(nb, "models.path"), "name 'models.path' is not a Python identifier"),
    (lambda nb: saved_file(nb, "RELATIVE", folder="../models"), "should not climb out with '..'"),
    (lambda nb: saved_file(nb, "RELATIVE", folder="/tmp"), "should be a relative path"),
    (lambda nb: loaded_expression("load_model()", "RELATIVE"), "loader 'load_model()' is not a Python identifier"),
    (lambda nb: expect_loadable(nb, "load_model", "class"), "name 'class' is not a Python identifier"),
])
def test_names_and_folders_are_validated_before_anything_runs(nb: KernelChannel, call, problem: str):
    with pytest.raises(ValueError, match=re.escape(problem)):
        call(nb)


def test_a_loader_returning_a_module_passes(nb: KernelChannel):
    assert loaded_expression("load_model", "RELATIVE") == "load_model(RELATIVE)"
    assert expect_loadable(nb, "load_model", "RELATIVE") == "Linear"
    assert expect_loadable(nb, "load_state", "RELATIVE", module=False) == "OrderedDict"
    assert ("loadable", "load_model", "RELATIVE", True) in nb.memo  # the other items of the grading reuse it


def test_a_loader_that_raises_fails_with_its_exception_shortened(nb: KernelChannel):
    with pytest.raises(CheckFailed) as caught:
        expect_loadable(nb, "load_raising", "RELATIVE")
    message = str(caught.value)
    assert message.startswith("`load_raising(RELATIVE)` raised RuntimeError: Error(s) in loading state_dict for "
                              "Linear: size mismatch for weight xxx")
    assert message.endswith("...; it should load the saved model") and len(message) < 300
    with pytest.raises(CheckFailed, match=r"^`load_model\(EMPTY\)` raised EOFError"):
        expect_loadable(nb, "load_model", "EMPTY")  # torch's own error on an empty file


def test_a_loader_returning_a_state_dict_fails_with_module(nb: KernelChannel):
    with pytest.raises(CheckFailed, match=r"^`load_state\(RELATIVE\)` should return the trained model, a "
                                          r"torch\.nn\.Module; it returned a collections\.OrderedDict \(a "
                                          r"state_dict\? build the model and load it with model\.load_state_dict\)$"):
        expect_loadable(nb, "load_state", "RELATIVE")
    with pytest.raises(CheckFailed, match=r"^`NOT_A_LOADER` should be a function that loads the saved model, is "
                                          r"a builtins\.int$"):
        expect_loadable(nb, "NOT_A_LOADER", "RELATIVE")


def test_the_loaded_model_is_an_expression_other_probes_take(nb: KernelChannel):
    images = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    found = robust_accuracy(nb, loaded_expression("load_conv", "CONV"), images, np.zeros(4, dtype=np.int64),
                            attacks=("fgsm",), steps=1)
    assert found.count == 4 and set(found.attacked) == {"fgsm"}


# -- end to end: the toy network assignment with an item for its saved model

SAVE = '''
import os

os.makedirs("models", exist_ok=True)
MODEL_PATH = "models/net.pt"
torch.save(net.state_dict(), MODEL_PATH)


def load_net(path):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    model.load_state_dict(torch.load(path))
    return model
'''

CHECK = '''
import pytest

from autograder.checks.saved import expect_loadable, saved_file


@pytest.mark.item("1f")
def test_saved(nb):
    saved_file(nb, "MODEL_PATH")
    expect_loadable(nb, "load_net", "MODEL_PATH")
'''


def test_the_toy_assignment_graded_with_an_item_for_its_saved_model(tmp_path: Path):
    target = toynet_with(tmp_path / "assignment", "check_saved.py", CHECK,
                         '      - {id: 1f, title: "net saved under ./models and loadable", points: 2}\n', 12)
    assert [item.id for item in target.rubric.questions[0].items][-1] == "1f"

    found, grade = grade_toynet(target, tmp_path / "jane", SAVE)
    assert {item: status for item, (status, _, _) in found.items()} == dict.fromkeys(found, "passed"), found
    assert Verification(grade, 1.0).complete
    record = json.loads((tmp_path / "results" / "jane" / "grade.json").read_text(encoding="utf-8"))
    assert record["totals"]["auto_points"] == record["totals"]["auto_max"] == 12.0

    elsewhere = SAVE.replace('MODEL_PATH = "models/net.pt"',
                             'import tempfile\nMODEL_PATH = os.path.join(tempfile.mkdtemp(), "net.pt")')
    found, _ = grade_toynet(target, tmp_path / "john", elsewhere)
    lost = {item for item, (status, _, _) in found.items() if status != "passed"}
    assert lost == {"1f"}, found
    status, points, reason = found["1f"]
    shown = re.match(r"`MODEL_PATH` is '(/[^']+)/net\.pt', outside \./models: save the model under \./models, "
                     r"as the handout asks", reason)
    assert status == "failed" and points == 0 and shown, reason
    saved_in = Path(shown.group(1))  # the kernel's /tmp: private under bubblewrap, else the host's
    if saved_in.parent == Path(tempfile.gettempdir()) and saved_in.name.startswith("tmp"):
        shutil.rmtree(saved_in, ignore_errors=True)
