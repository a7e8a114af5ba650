"""Every check of every assignment, fed a value of the wrong type for each name it reads,
gives the student a reason and never a grader error.

The names are found in the checks themselves (``nb.get``/``nb.call`` and the free names
of the grader's probes) and in the rubric's answer names, so that a new check is covered
without editing this test. Each assignment's notebooks are written to define every name
as one wrong value (or as a function returning it) and graded for real: real kernels, the
wire, the pytest plugin and the score stage.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from autograder.course.assignment import load_assignment
from autograder.grading.pipeline import GradeOptions, grade_submission
from autograder.grading.record import Status

WRONG = {
    "none": "None",
    "text": "'seventy-three'",
    "dict": "{'value': 1}",
    "0-d array": "np.array(7.0)",
    "nested list": "[[1.0, 2.0], [3.0]]",
}
ASSIGNMENTS = ("ece4179-2023", "ee046211-hw2", "ece4179-2021-a2", "ece4179-2021-a3", "fit3181-2023-a1")
_CALLED = re.compile(r"""nb\.call\(\s*["'](\w+)["']""")
_READ = re.compile(r"""nb\.get\(\s*["'](\w+)["']""")


def _probe_names(source: str) -> set[str]:
    """The names a probe's code takes from the student's namespace."""
    tree = ast.parse(source)
    loaded, bound = set(), set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return loaded - bound


def defined_by_reference(folder: Path) -> tuple[set[str], set[str]]:
    """(functions and classes, other names) the reference solutions define at top level."""
    functions: set[str] = set()
    variables: set[str] = set()
    for path in folder.glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!")))
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    functions.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    variables |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return functions, variables - functions


def names_read(assignment_id: str) -> tuple[set[str], set[str]]:
    """(values the checks read, functions and objects they call or probe)."""
    assignment = load_assignment(assignment_id)
    values: set[str] = set()
    called: set[str] = set()
    functions, variables = defined_by_reference(assignment.reference_dir)
    for path in sorted(assignment.checks_dir.glob("check_*.py")):
        text = path.read_text(encoding="utf-8")
        values |= set(_READ.findall(text))
        called |= set(_CALLED.findall(text))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "def probe(" in node.value:
                    called |= _probe_names(node.value.replace("MODEL", "model"))
                elif node.value in functions | variables:  # a name handed to a helper: sample(nb, "xavier_init")
                    (called if node.value in functions else values).add(node.value)
    for _, item in assignment.rubric.items():
        given = assignment.rubric.given(item.id)
        values |= {given["answer"]} if isinstance(given.get("answer"), str) else set()
        values |= set(given.get("answers") or {})
        named = {v for v in given.values() if isinstance(v, str)}  # a model handed to a helper: {model: deep_mlp}
        named |= {k for v in given.values() if isinstance(v, dict) for k in v}  # {models: {ae16: 16}}
        values |= named & variables
        called |= named & functions  # a function handed to a helper: {function: top5_correct}
    modules = {name for name in values | called if importlib.util.find_spec(name) is not None}  # torch, ...
    return values - called - modules, called - modules


def wrong_notebook(path: Path, values: set[str], called: set[str], wrong: str, where: str = "value",
                   shapes: tuple[int, list[str]] = (2, [])) -> None:
    """Every name the checks read holds ``wrong`` (``where`` = value), or a table of
    ``shapes[0]`` rows, each a pair of it (rows), or a dict of it under each key of
    ``shapes[1]`` (fields); every function returns it."""
    rows, fields = shapes
    held = {"value": "WRONG", "rows": f"[(WRONG, WRONG)] * {rows}", "fields": f"dict.fromkeys({fields!r}, WRONG)"}
    lines = ["import numpy as np", f"WRONG = {wrong}", "", "def _wrong(*args, **kwargs):", "    return WRONG", ""]
    lines += [f"{name} = {held[where]}" for name in sorted(values)]
    lines += [f"{name} = _wrong" for name in sorted(called)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join(lines))]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_the_names_are_found_in_the_checks():
    values, called = names_read("ece4179-2023")
    assert {"w_best", "q1_1_output", "q2_limit_zero", "optimizer"} <= values
    assert {"features", "compute_loss_and_grad", "dae", "psnr", "to_pixels", "model"} <= called
    values, called = names_read("ee046211-hw2")
    assert {"vgg11_table", "q2_grads", "t1_std"} <= values and {"xavier_init", "add_noise", "cnn"} <= called
    values, called = names_read("ece4179-2021-a2")
    assert {"ae16", "ae64", "optimizer_sgd", "model_max_val_acc", "deep_mlp", "params_wide", "q4_model",
            "q4_optimizer", "initial_lr"} <= values
    assert "shallow_mlp" in called  # a probe moves its weights to see whether a pick holds them
    assert {"eigenfaces", "zero_pixels", "criterion", "fc1_snapshots"} <= called | values
    values, called = names_read("ece4179-2021-a3")
    assert {"shallow_cnn", "deep_cnn", "deep_cnn_aug", "better_cnn", "val_top5_correct", "val_top5_misclassified",
            "cm_train", "cm_val", "aug_train_transform", "aug_test_transform"} <= values | called
    assert {"top5_correct", "top5_misclassified", "confusion_matrix", "occlusion_sensitivity"} <= called


def shapes(assignment_id: str) -> tuple[int, list[str]]:
    """The longest list the rubric gives any item (the rows of a table answer), and every
    key it gives (the fields of dict answers)."""
    rubric = load_assignment(assignment_id).rubric
    given = [rubric.given(item.id) for _, item in rubric.items()]
    rows = max([len(v) for values in given for v in values.values() if isinstance(v, list)] + [2])
    return rows, sorted({key for values in given for key in values})


# ece4179's answers are numbers, vectors and functions; ee046211 also has a table (rows of
# pairs) and dicts of arrays, where a wrong type hides one level down.
CASES = [(a, kind, "value") for a in ASSIGNMENTS for kind in WRONG] + [
    ("ee046211-hw2", kind, where) for kind in WRONG for where in ("rows", "fields")
]


@pytest.mark.parametrize(("assignment_id", "kind", "where"), CASES)
def test_every_check_gives_a_wrong_type_a_reason_not_a_grader_error(tmp_path: Path, assignment_id: str, kind: str,
                                                                     where: str):
    assignment = load_assignment(assignment_id)
    values, called = names_read(assignment_id)
    submission = tmp_path / "submission"
    for spec in assignment.rubric.notebooks:
        wrong_notebook(submission / spec.file, values, called, WRONG[kind], where, shapes(assignment_id))
    grade = grade_submission(assignment, submission, options=GradeOptions(synthetic=True), sandbox="local")
    automatic = [item for item in grade.items if item.kind == "auto"]
    assert automatic
    errors = [f"{item.id}: {item.reason}" for item in automatic if item.status is Status.ERROR]
    assert not errors, errors
    for item in automatic:
        if item.status is not Status.PASSED:
            assert item.reason and "grader error" not in item.reason, (item.id, item.reason)
    assert sum(item.earned for item in automatic) < sum(item.max_points for item in automatic) / 4
