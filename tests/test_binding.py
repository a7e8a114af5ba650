"""Finding the student's object for a name a check reads (``grading/binding.py``): the
rubric's ``names:``, aliases, kind and behaviour, the marker's ``bindings.yaml``, and what
goes to a marker when nothing, or too much, fits."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder.course.assignment import Assignment, load_assignment
from autograder.course.rubric import NameSpec, parse_rubric
from autograder.errors import NotDefined, Referred, RubricError, SubmissionError
from autograder.grading.binding import (
    BINDINGS_FILE,
    Binder,
    Candidate,
    follows_template,
    load_bindings,
    valid_target,
)
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission
from autograder.grading.record import Grade, ItemGrade
from autograder.marking.batch import grade_batch
from autograder.sandboxes.sandbox import LocalSandbox

from .conftest import TOYNET, TRIVIAL, write_notebook

MODULE = NameSpec(kind="module", about="the shallow network", aliases=["*shallow*"], input=[[784]], output=10,
                  params=25450)
SPECS = {
    "shallow": MODULE,
    "deep": NameSpec(kind="module", about="the deep network", aliases=["*deep*"], input=[[784]], output=10),
    "best": NameSpec(kind="module", about="the best pick", aliases=["*best*"], input=[[784]], output=10),
    "opt": NameSpec(kind="optimizer", about="its optimiser", aliases=["*sgd*"], of="shallow"),
    "rate": NameSpec(kind="value", about="the first learning rate", aliases=["lr", "*init*lr*"]),
    "square": NameSpec(kind="function", about="squares", aliases=["*square*"], args=1),
}


def module(expression: str, identity: int, params: int = 25450, fits: bool = True, kind: str = "MLP") -> Candidate:
    return Candidate(expression, kind, fits, params, identity)


def choose(name: str, candidates: list[Candidate], binder: Binder | None = None) -> tuple[str | None, list[str]]:
    binder = binder or Binder("student.ipynb", SPECS, follows=False)
    chosen, _, close = binder._choose(name, SPECS[name], candidates)
    return (chosen.expression if chosen else None), [c.expression for c in close]


def test_a_module_is_the_one_that_fits_once_the_others_names_and_objects_are_set_aside():
    candidates = [module("model_sgd", 1), module("best_model", 2), module("m", 2), module("deep_net", 3, 29642),
                  module("encoder", 4, fits=False), module("model_sgd_opt_name", 5, kind="SGDNet")]
    # best_model and its loop leftover `m` are the best pick's (one object); deep_net the deep one's;
    # SGDNet's name is an optimiser's alias, which does not claim a module
    assert choose("shallow", candidates[:5]) == ("model_sgd", [])
    assert choose("shallow", candidates)[0] is None  # two free modules fit alike, neither has the params...
    assert choose("shallow", [*candidates[:5], module("other", 6, params=1)]) == ("model_sgd", [])  # ...but one does
    assert choose("best", candidates) == ("best_model", [])  # by its alias; `m` is the same object
    assert choose("best", [module("picks['best']", 7), module("deep_net", 3)]) == ("picks['best']", [])


def test_a_name_several_cells_bind_is_not_taken_for_what_it_held_first():
    """After "run all", `model` holds the last task's network: it is never bound by kind."""
    rebound = Binder("student.ipynb", SPECS, follows=False, rebound={"model": [4, 9]})
    assert choose("shallow", [module("model", 1), module("copy", 2, params=3)], rebound) == (None, ["model", "copy"])
    assert choose("shallow", [module("model", 1)], rebound) == (None, ["model"])
    assert choose("shallow", [module("model", 1), module("my_shallow", 2)], rebound) == ("my_shallow", [])
    with pytest.raises(Referred, match=r"`model` \(a MLP\) fits, but code cells 4, 9 each bind `model`, which after "
                                       "the run holds the last one's"):
        rebound._refuse("shallow", MODULE, [module("model", 1)], "")


def test_an_exact_alias_wins_and_a_pattern_matches_the_class_name_too():
    assert choose("deep", [module("net", 1, kind="DeepMLP"), module("other", 2)]) == ("net", [])
    spec = NameSpec(kind="module", about="the deep one", aliases=["net", "*deep*"], input=[[784]], output=10)
    binder = Binder("s.ipynb", {"deep": spec}, follows=False)
    chosen, why, _ = binder._choose("deep", spec, [module("deep_a", 1), module("net", 2)])
    assert chosen is not None and chosen.expression == "net" and "`net`" in why


def test_values_are_bound_by_name_only_and_functions_are_listed_for_the_marker():
    numbers = [Candidate("lr", "float", True, None, 1), Candidate("epochs", "int", True, None, 2)]
    assert choose("rate", numbers) == ("lr", [])
    assert choose("rate", numbers[1:]) == (None, [])  # never by what it holds
    rebound = Binder("student.ipynb", SPECS, follows=False, rebound={"lr": [3, 7]})
    assert choose("rate", numbers, rebound) == (None, ["lr"])  # cell 7's `lr` is not cell 3's: a marker's
    with pytest.raises(Referred, match=r"code cells 3, 7 each bind `lr`, which after the run holds the last one's"):
        rebound._refuse("rate", SPECS["rate"], [numbers[0]], "")
    functions = [Candidate("sq", "function", True, None, 1), Candidate("cube", "function", True, None, 2)]
    assert choose("square", functions) == (None, ["sq", "cube"])
    assert choose("square", [*functions, Candidate("my_square", "function", True, None, 3)])[0] == "my_square"


def resolve(binder: Binder, name: str, entries: list[dict]) -> str:
    async def listed(kind, inputs, of, reserved):
        assert "shallow" in reserved and "EPOCHS" in reserved  # the template's names and the grader's parameters
        return [entry for entry in entries if entry.get("kind", "module") == kind]

    return asyncio.run(binder.resolve(name, listed)).target


def test_resolving_refers_another_starters_notebook_and_fails_the_templates():
    entries = [{"expression": "a", "type": "MLP", "outputs": [10], "params": 7, "identity": 1},
               {"expression": "b", "type": "MLP", "outputs": [10], "params": 7, "identity": 2},
               {"expression": "b_sgd", "type": "SGD", "covers": True, "identity": 3, "kind": "optimizer"}]
    other = Binder("student.ipynb", SPECS, follows=False, reserved=frozenset({"EPOCHS"}))
    with pytest.raises(Referred, match=r"follows another starter, and several objects could be it: `a` \(a MLP\)"):
        resolve(other, "shallow", entries)
    with pytest.raises(Referred, match="nothing in it maps an input of 784 to 10 values"):
        resolve(other, "shallow", [])
    with pytest.raises(Referred, match="needs `load_splits`, a name of the project's template that student.ipynb"):
        resolve(other, "load_splits", [])  # a helper only the template defines: never the student's 0
    template = Binder("student.ipynb", SPECS, follows=True, reserved=frozenset({"EPOCHS"}))
    with pytest.raises(NotDefined, match=r"`shallow` is not defined in student.ipynb; no cell .* close: `a`"):
        resolve(template, "shallow", entries)
    marker = Binder("student.ipynb", SPECS, overrides={"shallow": "b"}, follows=False, reserved=frozenset({"EPOCHS"}))
    assert resolve(marker, "opt", entries) == "b_sgd"  # the optimiser of the marker's choice, by what it updates
    assert "bound by a marker" in marker.bound["shallow"].sentence()


def test_the_markers_bindings_file_is_read_and_its_mistakes_named(tmp_path: Path):
    assert load_bindings(tmp_path) == {}
    (tmp_path / BINDINGS_FILE).write_text("shallow: net\nae16: models[16]\n")
    assert load_bindings(tmp_path) == {"shallow": "net", "ae16": "models[16]"}
    for text, problem in (("- net\n", "should map each name"), ("shallow: net()\n", "should be a name of the notebook"),
                          ("shallow: [\n", "not readable YAML"), ("1x: net\n", "is not a name")):
        (tmp_path / BINDINGS_FILE).write_text(text)
        with pytest.raises(SubmissionError, match=re.escape(str(tmp_path / BINDINGS_FILE)) + ".*" + problem):
            load_bindings(tmp_path)
    assert [valid_target(t) for t in ("net", "models[16]", "nets['ae'].encoder", "f(x)", "a + b", "")] == [
        True, True, True, False, False, False]


def test_a_notebook_follows_the_template_when_it_binds_half_its_names():
    names = {name: SPECS[name] for name in ("shallow", "deep", "best", "opt")}
    assert follows_template(["shallow = 1\ndeep = 2", "x = 3"], names)
    assert not follows_template(["net = 1\nshallow = 2", "model = 3"], names)
    template = ["import torch", "data = load()", "shallow = ...", "plot(data)", "deep = ..."]
    assert follows_template(["import torch", "data  =  load()", "shallow = ...", "x = 1"], names, template)  # blank
    assert not follows_template(["import torch", "net = 1"], names, template)


def test_the_rubric_refuses_names_that_do_not_fit_their_kind():
    raw = yaml.safe_load((TRIVIAL / "rubric.yaml").read_text())
    raw["questions"][1]["names"] = {"double": {"kind": "value", "about": "doubles", "args": 1},
                                    "twice": {"kind": "optimizer", "about": "twice it", "of": "nowhere"},
                                    "thrice": {"kind": "function", "about": "thrice it", "aliases": ["a b"]}}
    with pytest.raises(RubricError) as error:
        parse_rubric(raw, "rubric.yaml")
    text = str(error.value)
    assert "args is for a function, not a value" in text and "alias 'a b'" in text
    raw["questions"][1]["names"] = {"twice": {"kind": "optimizer", "about": "twice it", "of": "nowhere"}}
    with pytest.raises(RubricError, match="'twice' is of 'nowhere', which no question of trivial.ipynb declares"):
        parse_rubric(raw, "rubric.yaml")


NAMES = """    names:
      net:
        kind: module
        about: the classifier of points
        aliases: ["*classifier*"]
        input: [[8]]
        output: 3
      opt:
        kind: optimizer
        about: the optimiser of the classifier
        aliases: ["*sgd*"]
        of: net
"""


def toynet_named(folder: Path) -> Path:
    import shutil

    shutil.copytree(TOYNET, folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (folder / "rubric.yaml").read_text(encoding="utf-8")
    text = text.replace("    points: 10\n    items:\n", "    points: 10\n" + NAMES + "    items:\n", 1)
    (folder / "rubric.yaml").write_text(text, encoding="utf-8")
    return folder


STUDENT = [
    "import numpy as np\nimport torch\nfrom torch import nn",
    "data = np.load('data/blobs.npz')\nX = torch.tensor(data['x_train'], dtype=torch.float32)\n"
    "Y = torch.tensor(data['y_train'])",
    "def train_model(config):\n    torch.manual_seed(0)\n"
    "    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "    optimiser = torch.optim.SGD(model.parameters(), lr=config['lr'], momentum=0.9)\n"
    "    for _ in range(config['epochs']):\n        for i in range(0, len(X), 32):\n"
    "            optimiser.zero_grad()\n"
    "            nn.functional.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()\n"
    "            optimiser.step()\n    return model, optimiser",
    "my_model, my_sgd = train_model({'lr': 0.1, 'epochs': 60})",
]


def graded(assignment: Assignment, submission: Path, cells: list[str]) -> tuple[Grade, dict[str, ItemGrade]]:
    """``cells`` as the submission's notebook, graded; the grade and its items by id."""
    write_notebook(submission / "toynet.ipynb", *cells, parameters=None)
    opened = open_submission(submission)
    try:
        grade = grade_submission(assignment, opened, options=GradeOptions(synthetic=True), sandbox=LocalSandbox())
    finally:
        opened.close()
    return grade, {item.id: item for item in grade.items}


def test_another_starters_notebook_is_graded_through_what_fits_and_a_marker_binds_the_rest(tmp_path: Path):
    """A real grading: the network and its optimiser found by kind and behaviour and said so;
    a second network makes the network ambiguous, which refers its items to a marker, whose
    bindings.yaml makes the next run of the batch grade the submission again with them."""
    assignment = load_assignment(toynet_named(tmp_path / "toynet"))
    submission = tmp_path / "batch" / "student"
    grade, items = graded(assignment, submission, STUDENT)
    assert [items[i].status for i in ("1a", "1b", "1c", "1d", "1e")] == ["passed"] * 5, {
        i: item.reason for i, item in items.items()}
    assert items["1a"].reason.startswith("graded `my_model`, a Sequential, as `net` (the one module of the notebook "
                                         "that maps an input of 8 to 3 values)")
    assert "graded `my_sgd`, a SGD, as `opt`" in items["1b"].reason
    assert any("graded `my_model`" in f.message for f in grade.findings)

    write_notebook(submission / "toynet.ipynb", *STUDENT, "spare = train_model({'lr': 0.0, 'epochs': 1})[0]",
                   parameters=None)
    results = tmp_path / "results"
    grade_batch(assignment, [tmp_path / "batch"], out_dir=results, options=GradeOptions(synthetic=True),
                sandbox="local", workers=1)
    record = yaml.safe_load((results / "student" / "grade.json").read_text())
    statuses = {item["id"]: (item["status"], item["reason"]) for item in record["items"]}
    assert statuses["1a"][0] == "referred" and "`my_model` (a Sequential), `spare` (a Sequential)" in statuses["1a"][1]
    assert statuses["1a"][1].endswith("grades the submission again")
    (results / "student" / BINDINGS_FILE).write_text("net: my_model\n")
    grade_batch(assignment, [tmp_path / "batch"], out_dir=results, options=GradeOptions(synthetic=True),
                sandbox="local", workers=1)
    record = yaml.safe_load((results / "student" / "grade.json").read_text())
    assert record["bindings"] == {"net": "my_model"}
    assert {item["id"]: item["status"] for item in record["items"]} == {i: "passed" for i in ("1a", "1b", "1c", "1d",
                                                                                              "1e")}
    assert "bound by a marker in bindings.yaml" in record["items"][0]["reason"]


def test_an_optimiser_made_inside_a_training_function_is_found_by_what_it_updates(tmp_path: Path):
    """`train_model(config)` keeps its optimiser local, as the courses' students write it: the
    kernel's set-up noted it, so it is graded by what it is (an SGD passes, an Adam in the
    same place loses the item), with its last settings (a scheduler's dropped rate)."""
    assignment = load_assignment(toynet_named(tmp_path / "toynet"))
    local = [STUDENT[0], STUDENT[1], STUDENT[2].replace("return model, optimiser", "return model")
             .replace("momentum=0.9)", "momentum=0.9)\n    drop = torch.optim.lr_scheduler.StepLR(optimiser, 30)")
             .replace("            optimiser.step()", "            optimiser.step()\n        drop.step()"),
             "my_model = train_model({'lr': 0.1, 'epochs': 60})"]
    found = {kind: graded(assignment, tmp_path / kind, [
        cell.replace("torch.optim.SGD(model.parameters(), lr=config['lr'], momentum=0.9)",
                     f"torch.optim.{kind}(model.parameters(), lr=config['lr'])") for cell in local])[1]
        for kind in ("SGD", "Adam")}
    sgd, adam = found["SGD"]["1b"], found["Adam"]["1b"]
    assert sgd.status == "passed", sgd.reason
    assert "graded the SGD a function made for `my_model` (no name holds it after the run) as `opt`" in sgd.reason
    assert adam.status == "failed" and "Adam" in adam.reason, adam.reason
    assert found["SGD"]["1c"].status == "passed", found["SGD"]["1c"].reason  # trained on with its settings


def test_a_course_starters_notebook_that_calls_its_network_dnn_is_not_taken_for_the_templates():
    """FIT3181 Part 2: the template's result names (split, grid search, label smoothing) are
    declared with the network's, so one name in common does not make a notebook of the
    course's starter "follow the template" (its missing names would fail instead of going to
    a marker); the reference, which binds them all, still follows it."""
    fit = load_assignment("fit3181-2023-a1")
    notebook = "A1_Part2_Solutions.ipynb"
    specs = fit.rubric.names_for(notebook)
    assert {"dnn", "grid_results", "best_model", "ls_models", "X_valid"} <= set(specs)
    starter = ["from emnist import extract_training_samples", "Xtr, ytr = extract_training_samples('letters')",
               "dnn = nn.Sequential(nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 40), nn.ReLU(), nn.Linear(40, 26))",
               "results = [train(n1, n2, act) for n1, n2, act in grid]"]
    assert not follows_template(starter, specs)
    reference = nbformat.read(fit.reference_dir / notebook, as_version=4)
    assert follows_template([cell.source for cell in reference.cells if cell.cell_type == "code"], specs)
