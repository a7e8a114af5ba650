"""The check helpers every assignment shares (autograder.checks) and the datasets a rubric
declares (npz:), proven on the toy network assignment graded for real in the local sandbox,
and on the grader's own builds of the handouts' tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from autograder.checking import CheckFailed
from autograder.checks.layers import expect_table, parse_row, table, trace
from autograder.checks.training import accuracy, cross_entropy, optimizer, outputs, trained_further
from autograder.course.assignment import Assignment, load_assignment
from autograder.data import dataset
from autograder.data.context import DataContext, synthetic_source
from autograder.errors import RubricError, UsageError
from autograder.grading.channel import KernelChannel
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission

from .assignments.toynet.solution import CELLS, LOAD, NET, OPT, TRAIN
from .conftest import ROOT, notebook, run_cli, start_live, write_notebook

TOYNET = ROOT / "tests" / "assignments" / "toynet"


@pytest.fixture(scope="module")
def toynet() -> Assignment:
    return load_assignment(TOYNET)


def _grade(toynet: Assignment, folder: Path, *cells: str) -> dict[str, tuple[str, float | None, str]]:
    write_notebook(folder / "toynet.ipynb", *cells, parameters='DATA_DIR = "data"')
    grade = grade_submission(toynet, open_submission(folder), options=GradeOptions(synthetic=True), sandbox="local")
    return {item.id: (str(item.status), item.points, item.reason or "") for item in grade.items}


def test_the_solution_earns_every_point(toynet: Assignment, tmp_path: Path):
    found = _grade(toynet, tmp_path, *CELLS)
    assert {item: status for item, (status, _, _) in found.items()} == dict.fromkeys(found, "passed"), found


def test_a_network_written_another_way_keeps_its_points(toynet: Assignment, tmp_path: Path):
    """A class whose forward calls F.relu and flattens, with a dropout: the layers of the
    table, found by the forward pass (a list of modules has no ReLU in it)."""
    net = '''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out, self.drop = nn.Linear(8, 16), nn.Linear(16, 3), nn.Dropout(0.1)

    def forward(self, x):
        return self.out(self.drop(torch.nn.functional.relu(self.hidden(x.view(len(x), -1)))))


net = Net()
'''
    found = _grade(toynet, tmp_path, LOAD, net, OPT, TRAIN)
    assert {item: status for item, (status, _, _) in found.items()} == dict.fromkeys(found, "passed"), found


def test_a_broken_network_loses_each_item_with_its_reason(toynet: Assignment, tmp_path: Path):
    wide = NET.replace("nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)", "nn.Linear(8, 32), nn.Linear(32, 3)")
    adam = OPT.replace("torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)",
                       "torch.optim.Adam(net.parameters(), lr=1e-4)")
    found = _grade(toynet, tmp_path, LOAD, wide, adam, TRAIN.replace("EPOCHS = 60", "EPOCHS = 1"))
    status = {item: state for item, (state, _, _) in found.items()}
    assert status == dict.fromkeys(found, "failed"), found
    assert "layer 1 of `net` is Linear(8, 32); the handout's table has Linear(8, 16) there" in found["1a"][2]
    assert "`opt` should be torch.optim.SGD" in found["1b"][2] and "is Adam" in found["1b"][2]
    assert "two more epochs lower the training loss" in found["1c"][2]
    assert found["1d"][2] == "net has no hidden layer"
    assert found["1e"][1] == 0 and "accuracy" in found["1e"][2]


def test_an_item_whose_network_never_trained_because_its_cell_failed_says_so(toynet: Assignment, tmp_path: Path):
    failing = TRAIN.replace("EPOCHS = 60", "EPOCHS = 60\nnet(torch.zeros(1, 5))")  # a shape error before training
    found = _grade(toynet, tmp_path, LOAD, NET, OPT, failing)
    status, _, reason = found["1c"]
    assert status == "failed" and ", which uses `net`, failed with RuntimeError" in reason, found["1c"]


def test_a_value_that_is_no_network_is_the_students_mistake_not_the_graders(toynet: Assignment, tmp_path: Path):
    found = _grade(toynet, tmp_path / "text", LOAD, 'net = "a network"', "opt = None", "")
    for item in ("1a", "1b", "1c", "1d", "1e"):
        status, _, reason = found[item]
        assert status == "failed" and "`net` should be a torch.nn.Module, is a builtins.str" in reason, found[item]
    found = _grade(toynet, tmp_path / "none", LOAD, NET, "opt = None", "")
    for item in ("1b", "1c"):
        status, _, reason = found[item]
        assert status == "failed" and "`opt` should be a torch.optim optimizer, is a builtins.NoneType" in reason


def test_the_helpers_read_a_model_and_an_optimizer_named_like_their_own_locals(tmp_path: Path):
    """A student's ``model`` and ``optimizer`` are the names the probes' own code uses."""
    cells = [LOAD, NET.replace("net =", "model ="), OPT.replace("opt =", "optimizer =").replace("net.", "model.")]
    live = start_live(notebook(*cells, parameters=f"DATA_DIR = {str(tmp_path)!r}"), tmp_path, total_timeout=120)
    try:
        np.savez(tmp_path / "blobs.npz", **load_assignment(TOYNET).function("datagen", "blobs")("small", 0))
        nb = KernelChannel(live, timeout=60)
        found = trace(nb, "model", (8,))
        assert [layer.type for layer in found.layers] == ["Linear", "ReLU", "Linear"] and found.total == 195
        assert optimizer(nb, "optimizer", "model").covers
        assert outputs(nb, "model", np.zeros((5, 8), dtype=np.float32), what="outputs").shape == (5, 3)
        further = trained_further(nb, "model", "optimizer", 'load(DATA_DIR)["x_train"]', 'load(DATA_DIR)["y_train"]',
                                  epochs=1, batch=32)
        assert further.before.shape == further.after.shape == (300, 3)
    finally:
        live.shutdown()


def test_global_average_pooling_written_as_a_mean_is_the_tables_gap(tmp_path: Path):
    """A3's deep CNN ends with GAP: nn.AdaptiveAvgPool2d(1), F.adaptive_avg_pool2d or a mean
    over the two spatial axes are the same row; a mean over the channels is not."""
    nets = {
        "as_module": "nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
                     "nn.Linear(4, 2))",
        "as_mean": "Mean()",
        "as_full_average": "nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(8), nn.Flatten(), "
                           "nn.Linear(4, 2))",
        "over_channels": "Mean(dim=1)",
        "as_max": "nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), "
                  "nn.Linear(4, 2))",
        "partial_average": "nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten(), "
                           "nn.Linear(16, 2))",
    }
    mean = ("class Mean(nn.Module):\n    def __init__(self, dim=(2, 3)):\n        super().__init__()\n"
            "        self.dim, self.conv, self.fc = dim, nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 2)\n\n"
            "    def forward(self, x):\n        x = torch.relu(self.conv(x)).mean(self.dim)\n"
            "        return self.fc(x.reshape(len(x), -1)[:, :4])\n")
    cells = ["import torch\nfrom torch import nn", mean, *(f"{name} = {net}" for name, net in nets.items())]
    live = start_live(notebook(*cells), tmp_path, total_timeout=120)
    rows = ["Conv2d(3, 4, 3, padding=1)", "ReLU", "AdaptiveAvgPool2d(1)", "Flatten", "Linear(4, 2)"]
    try:
        nb = KernelChannel(live, timeout=60)
        for name in ("as_module", "as_mean", "as_full_average"):
            expect_table(trace(nb, name, (3, 8, 8)), rows, (3, 8, 8), what=name)
        with pytest.raises(CheckFailed, match="layer 3 of `over_channels` is Linear"):
            expect_table(trace(nb, "over_channels", (3, 8, 8)), rows, (3, 8, 8), what="over_channels")
        with pytest.raises(CheckFailed, match="layer 3 of `as_max` is AdaptiveMaxPool2d"):
            expect_table(trace(nb, "as_max", (3, 8, 8)), rows, (3, 8, 8), what="as_max")
        with pytest.raises(CheckFailed, match="layer 3 of `partial_average` is AvgPool2d"):
            expect_table(trace(nb, "partial_average", (3, 8, 8)), rows, (3, 8, 8), what="partial_average")
    finally:
        live.shutdown()


def test_the_tables_of_the_handouts_are_built_with_their_counts():
    """Counts as the contracts' counts.py prints them (torch, meta device)."""
    assert sum(layer.params for layer in table(["Linear(4096, 16)", "ReLU", "Linear(16, 4096)"], (4096,))) == 135_184
    deep = ["Linear(784, 32)", "ReLU", "Linear(32, 64)", "ReLU", "Linear(64, 32)", "ReLU", "Linear(32, 10)"]
    assert sum(layer.params for layer in table(deep, (784,))) == 29_642
    cnn = ["Conv2d(3, 96, 7, stride=2)", "ReLU", "Conv2d(96, 64, 5, stride=2)", "ReLU", "Conv2d(64, 128, 3, stride=2)",
           "ReLU", "MaxPool2d(3, stride=3)", "Flatten", "Linear(1152, 128)", "ReLU", "Linear(128, 10)"]  # A3, Table 1
    built = table(cnn, (3, 96, 96))
    assert built[6].out == (128, 3, 3) and built[8].out == (128,)
    assert sum(layer.params for layer in built) == 390_602
    assert built[0].written() == "Conv2d(3, 96, kernel_size=7, stride=2, padding=0)"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("Linear(784", "is not written as Type(arguments)"),
        ("os.system('x')", "the type must be one of"),
        ("Linear(784, n)", "arguments must be numbers"),
    ],
)
def test_a_table_row_that_is_not_a_layer_is_refused(row: str, problem: str):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_row(row)


def test_a_table_whose_rows_do_not_chain_is_refused():
    with pytest.raises(ValueError, match=r"does not take the output of the row before, of shape \(16,\)"):
        table(["Linear(8, 16)", "Linear(32, 3)"], (8,))


def test_losses_and_accuracies_are_computed_on_the_trusted_side_as_torch_computes_them():
    rng = np.random.default_rng(3)
    scores, labels = rng.normal(0, 5, (50, 7)).astype(np.float32), rng.integers(0, 7, 50)
    want = float(torch.nn.functional.cross_entropy(torch.tensor(scores, dtype=torch.float64), torch.tensor(labels)))
    assert cross_entropy(scores, labels) == pytest.approx(want, rel=1e-9)
    assert accuracy(scores, labels) == float((scores.argmax(1) == labels).mean())


def test_a_declared_npz_dataset_has_a_view_without_its_withheld_arrays(toynet: Assignment, tmp_path: Path):
    _ = toynet.rubric
    source = synthetic_source(["toy-blobs"])
    blobs = dataset("toy-blobs")
    context = DataContext(["toy-blobs"], source, synthetic=True)
    try:
        with np.load(context.view / "blobs.npz") as view, np.load(source / "blobs.npz") as full:
            assert not view["y_test"].any() and view["y_test"].shape == full["y_test"].shape
            assert view["y_test"].dtype == full["y_test"].dtype and full["y_test"].any()
            assert np.array_equal(view["x_test"], full["x_test"]) and np.array_equal(view["y_train"], full["y_train"])
        assert np.array_equal(blobs.heldout(source)["y_test"], np.load(source / "blobs.npz")["y_test"])
        assert "y_test (zeros in the view)" in context.described()
    finally:
        context.close()


def test_a_course_file_keeps_its_positional_keys_its_columns_and_its_holdout(tmp_path: Path):
    """ECE4179 2021's files: np.savez(path, a, b) keys arr_0, arr_1, images one per column, and
    a .npy of faces of which the grader keeps the last tenth. The view keeps the course's
    layout; checks get arrays by name, an item per row."""
    from autograder.data.npz import NpzDataset, NpzSpec

    images = np.arange(20 * 6, dtype=np.uint8).reshape(20, 6)  # 20 images of 6 pixels, as rows
    columns = NpzDataset(NpzSpec(name="cols", file="c.npz", standin="m:f", withheld=["y"], arrays={
        "arr_0": {"name": "x", "shape": [6, None], "kind": "uint8", "per": "column"},
        "arr_1": {"name": "y", "shape": [None], "kind": "int"}}),
        owner="test", standin=lambda: lambda scale, seed: {"x": images, "y": np.arange(20)})
    faces = NpzDataset(NpzSpec(name="faces-q1", file="f.npy", standin="m:f", holdout=0.1,
                               arrays={"faces": {"shape": [None, 2, 3], "kind": "uint8"}}),
                       owner="test", standin=lambda: lambda scale, seed: {"faces": images.reshape(20, 2, 3)})
    source, view = tmp_path / "source", tmp_path / "view"
    view.mkdir()
    for made in (columns, faces):
        made.synth(source, scale="small", seed=0)
        made.stage(source, view)
    with np.load(source / "c.npz") as written:
        assert written.files == ["arr_0", "arr_1"] and np.array_equal(written["arr_0"], images.T)
    with np.load(view / "c.npz") as seen:
        assert np.array_equal(seen["arr_0"], images.T) and not seen["arr_1"].any()
    assert np.array_equal(columns.visible(source)["x"], images) and "y" not in columns.visible(source)
    assert np.array_equal(columns.heldout(source)["y"], np.arange(20))
    assert np.load(view / "f.npy").shape == (18, 2, 3)
    assert np.array_equal(faces.heldout(source)["faces"], images.reshape(20, 2, 3)[18:])
    assert "the last 10% of its items (left out)" in faces.WITHHELD
    np.save(source / "f.npy", np.zeros((5, 3, 3), np.uint8))
    assert faces.missing(source) == [f"{source / 'f.npy'}: faces has shape (5, 3, 3), should be (N, 2, 3)"]


def test_a_course_file_that_is_not_as_declared_is_named_with_what_is_wrong(toynet: Assignment, tmp_path: Path):
    _ = toynet.rubric
    blobs = dataset("toy-blobs")
    assert blobs.missing(tmp_path) == [f"{tmp_path / 'blobs.npz'} is missing (three classes of points in 8 dimensions)"]
    np.savez(tmp_path / "blobs.npz", x_train=np.zeros((4, 3)), y_train=np.zeros(4), x_test=np.zeros((2, 8)))
    problems = blobs.missing(tmp_path)[0]
    assert "x_train has shape (4, 3), should be (N, 8)" in problems
    assert "y_train holds float64, should be int" in problems
    assert "has no array 'y_test'" in problems
    (tmp_path / "blobs.npz").write_text("not a zip")
    assert "is not a readable .npz file" in blobs.missing(tmp_path)[0]


def _toynet_copy(folder: Path, change) -> Path:
    raw = yaml.safe_load((TOYNET / "rubric.yaml").read_text(encoding="utf-8"))
    change(raw)
    (folder / "rubric.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return folder / "rubric.yaml"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda raw: raw["notebooks"][0].update(datasets=["toy-blob"]),
         "notebook 'toynet.ipynb' reads unknown dataset 'toy-blob'"),
        (lambda raw: raw["npz"].append(dict(raw["npz"][0])), "dataset 'toy-blobs' is declared twice"),
        (lambda raw: raw["npz"][0].update(name="faces"), "'faces' is declared twice or is a dataset module's name"),
        (lambda raw: raw["npz"][0].update(withheld=["labels"]), "withheld names labels, which arrays does not declare"),
    ],
)
def test_a_rubric_that_declares_a_dataset_wrongly_is_refused(tmp_path: Path, change, problem: str):
    with pytest.raises(RubricError) as caught:
        _ = Assignment(_toynet_copy(tmp_path, change)).rubric
    assert problem in str(caught.value)


def test_two_assignments_cannot_declare_one_dataset_name(toynet: Assignment, tmp_path: Path):
    _ = toynet.rubric
    path = _toynet_copy(tmp_path, lambda raw: raw.update(assignment="another"))
    with pytest.raises(UsageError, match="dataset 'toy-blobs' is declared by both toynet and another"):
        _ = Assignment(path).rubric


def test_the_data_commands_make_and_check_a_declared_dataset(tmp_path: Path):
    made = run_cli("data", "synth", "hw2-q2q3", tmp_path, "--assignment", "ece4179-2021-a2")
    assert made.returncode == 0, made.stderr
    with np.load(tmp_path / "hw2_Q2_and_Q3_data.npz") as written:  # as the course wrote it: np.savez(path, a, b, ...)
        assert written.files == [f"arr_{k}" for k in range(6)]
        assert written["arr_0"].shape[0] == 784 and written["arr_0"].dtype == np.uint8  # an image per column
    checked = run_cli("data", "check", tmp_path, "--assignment", "ece4179-2021-a2")
    assert checked.returncode == 1 and "hw2_Q1.npy is missing" in checked.stdout
    assert "hw2_Q2_and_Q3_data.npz" not in checked.stdout and "hw2_Q4_data.npz is missing" in checked.stdout
    refused = run_cli("data", "synth", "hw2-q2q3", tmp_path)
    assert refused.returncode != 0 and "needs --assignment" in refused.stdout + refused.stderr


def test_the_misleading_stand_in_carries_its_shortcut_in_training_only():
    """ece4179-2021-a2 Q4: the mark sits at the label's place in every training image and at a
    random class's place in the test images, so the "strange behaviour" is there to find."""
    datagen = load_assignment("ece4179-2021-a2").module("datagen")
    arrays = datagen.q4("small", 0)

    def places(images):
        top = images.reshape(len(images), 28, 28)[:, 1:3, 4:24].reshape(len(images), 2, 10, 2)
        return (top == 255).all(axis=(1, 3)).argmax(axis=1)

    assert (places(arrays["x_train"]) == arrays["y_train"]).all()
    assert (places(arrays["x_test"]) == arrays["y_test"]).mean() < 0.2


def test_a_rubric_declares_its_stl10_split_as_a_dataset_its_notebooks_read(tmp_path: Path):
    def declare(raw):
        raw["stl10"] = [{"name": "toy-stl10", "sizes": {"train": 8000, "val": 2000, "test": 3000}, "seed": 1}]
        raw["notebooks"][0]["datasets"].append("toy-stl10")

    assignment = Assignment(_toynet_copy(tmp_path, declare))
    assert assignment.rubric.datasets() == ["toy-blobs", "toy-stl10"]
    split = assignment.dataset("toy-stl10")
    assert split.spec.seed == 1 and split.WITHHELD == "the test labels (all 1, the first class)"


CLASSIFIER_CELLS = [
    "import numpy as np\nimport torch\nfrom torch import nn\nimport torchvision.transforms as T\ntorch.manual_seed(0)",
    # confusion matrices: right, transposed, rates over the true classes, rates over the predicted ones
    "def counts(labels, predictions, n=10):\n    m = np.zeros((n, n), int)\n"
    "    np.add.at(m, (labels, predictions), 1)\n"
    "    return m\n\ndef transposed(labels, predictions, n=10):\n    return counts(labels, predictions, n).T\n\n"
    "def rates(labels, predictions, n=10):\n    m = counts(labels, predictions, n)\n"
    "    return m / np.maximum(m.sum(1, keepdims=True), 1)\n\n"
    "def by_columns(labels, predictions, n=10):\n    m = counts(labels, predictions, n)\n"
    "    return m / np.maximum(m.sum(0, keepdims=True), 1)",
    # top k: numpy, torch tensors only (raises on numpy), lowest first, grouped by the class predicted
    "def top(probs, labels, k=5, correct=True, by_predicted=False, lowest=False):\n"
    "    probs, labels = np.asarray(probs), np.asarray(labels)\n    predicted, score = probs.argmax(1), probs.max(1)\n"
    "    group = predicted if by_predicted else labels\n    rows = []\n    for c in range(probs.shape[1]):\n"
    "        keep = (group == c) & ((predicted == labels) if correct else (predicted != labels))\n"
    "        chosen = np.flatnonzero(keep)\n        order = np.argsort(score[chosen] if lowest else -score[chosen])\n"
    "        rows.append(chosen[order][:k].tolist())\n    return rows\n\n"
    "def right(probs, labels, k=5):\n    return top(probs, labels, k)\n\n"
    "def right_lowest(probs, labels, k=5):\n    return top(probs, labels, k, lowest=True)\n\n"
    "def wrong_by_predicted(probs, labels, k=5):\n"
    "    return top(probs, labels, k, correct=False, by_predicted=True)\n\n"
    "def right_in_torch(probs, labels, k=5):\n    score, predicted = probs.max(dim=1)\n    rows = []\n"
    "    for c in range(probs.shape[1]):\n        chosen = torch.nonzero((labels == c) & (predicted == c)).flatten()\n"
    "        rows.append(chosen[torch.topk(score[chosen], min(k, len(chosen))).indices])\n    return rows",
    # a block layered four times, a flat stack of the same layers, and a transform
    "def blk(i, o):\n    return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1), nn.ReLU())\n\n"
    "layered = nn.Sequential(blk(3, 4), blk(4, 4), blk(4, 4), blk(4, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
    "nn.Linear(4, 2))\n"
    "flat = nn.Sequential(*[m for b in (blk(3, 4), blk(4, 4), blk(4, 4), blk(4, 4)) for m in b], "
    "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    "halve = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])",
]


def test_classifier_results_are_checked_in_the_forms_a_marker_accepts(tmp_path: Path):
    """Confusion matrices (counts rows true, the transpose, rates over the true classes; not
    rates over the predicted ones), the most confident answers per class (numpy or a function
    written for tensors; not lowest first; wrong answers by the class predicted only where
    the handout's words allow it), blocks layered, and a model run through a transform."""
    from autograder.checks.augmentation import transformed
    from autograder.checks.classification import (
        confusion,
        confusion_inputs,
        expect_confusion_function,
        expect_top_k_function,
        expect_top_k_result,
        top_k,
        top_k_inputs,
    )
    from autograder.checks.layers import expect_repeated_block

    live = start_live(notebook(*CLASSIFIER_CELLS), tmp_path, total_timeout=120)
    try:
        nb = KernelChannel(live, timeout=60)
        forms = {name: expect_confusion_function(nb, name) for name in ("counts", "transposed", "rates")}
        assert [(f.transposed, f.normalised) for f in forms.values()] == [(False, False), (True, False), (False, True)]
        with pytest.raises(CheckFailed, match="is not the confusion matrix"):
            expect_confusion_function(nb, "by_columns")
        assert expect_top_k_function(nb, "right", correct=True) == ""
        assert expect_top_k_function(nb, "right_in_torch", correct=True) == ""
        with pytest.raises(CheckFailed, match="highest softmax score, highest first"):
            expect_top_k_function(nb, "right_lowest", correct=True)
        with pytest.raises(CheckFailed):
            expect_top_k_function(nb, "wrong_by_predicted", correct=False)
        assert "grouped by the class predicted" in expect_top_k_function(nb, "wrong_by_predicted", correct=False,
                                                                          either_grouping=True)
        expect_repeated_block(nb, "layered", times=4)
        with pytest.raises(CheckFailed, match="no convolutional block is used 4 times in `flat`"):
            expect_repeated_block(nb, "flat", times=4)
        images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
        scores = outputs(nb, "layered", images, what="outputs", transform="halve", batch=4)
        direct = outputs(nb, "layered", (images.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5, what="outputs")
        assert scores.shape == (6, 2) and np.allclose(scores, direct, atol=1e-5)
        seen = transformed(nb, "halve", images)
        assert seen.shape == (6, 3, 8, 8) and np.allclose(seen, (images.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5,
                                                           atol=1e-6)
    finally:
        live.shutdown()
    labels, predictions = confusion_inputs(1)
    assert confusion(labels, predictions, 10)[9].sum() == 0 and confusion(labels, predictions, 10)[:, 0].sum() == 0
    probs, labels = top_k_inputs(2)
    assert all(len(row) == 5 for grouping in ("true", "predicted") for correct in (True, False)
               for row in top_k(probs, labels, 5, correct=correct, by=grouping))
    # The notebook's own result: ties within the tolerance may come out either way.
    tied = np.full((4, 10), 0.05, dtype=np.float32)
    tied[:, 0] = [0.5, 0.5004, 0.4, 0.3]
    tied[:, 1] = [0.45, 0.0, 0.0, 0.0]
    want = top_k(tied, np.zeros(4, dtype=int), 2, correct=True)
    assert want[0] == [1, 0]
    expect_top_k_result([[0, 1]] + [[]] * 9, tied, np.zeros(4, dtype=int), what="picks", correct=True, k=2)
    with pytest.raises(CheckFailed, match="holds \\[3, 2\\] for class 0"):
        expect_top_k_result([[3, 2]] + [[]] * 9, tied, np.zeros(4, dtype=int), what="picks", correct=True, k=2)


def test_a3s_labels_come_from_the_courses_hw3_npz_by_position_or_another_npz_file(toynet: Assignment,
                                                                                    tmp_path: Path):
    """ece4179-2021-a3's checks read a split's labels through one function, from the course's
    hw3.npz (arr_0..arr_5: train, validation, test pictures and labels) or any npz: file."""
    a3 = load_assignment("ece4179-2021-a3")
    splits = a3.module("splits")
    a3.declare_datasets()
    source = synthetic_source(["stl10-a3"])
    data = SimpleNamespace(source=source)
    with np.load(source / "hw3.npz") as course:
        assert np.array_equal(splits.labels(a3, data, "test"), course["arr_5"])
        assert np.array_equal(splits.labels(a3, data, "val"), course["arr_3"])
        assert splits.arrays(a3, data)["x_train"].shape[1:] == (96, 96, 3) == course["arr_0"].shape[1:]
    blobs = toynet.dataset("toy-blobs")
    folder = tmp_path / "own"
    blobs.synth(folder, scale="small", seed=0)

    class OwnFile:  # the assignment as it reads once its rubric declares the course's file under npz:
        def dataset(self, name):
            assert name == splits.DATASET
            return blobs

    own = SimpleNamespace(source=folder)
    assert np.array_equal(splits.labels(OwnFile(), own, "test"), blobs.heldout(folder)["y_test"])
    assert np.array_equal(splits.labels(OwnFile(), own, "train"), blobs.visible(folder)["y_train"])
