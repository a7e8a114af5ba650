"""The student bundle holds nothing hidden, and its self-check works on its own."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder.course.assignment import load_assignment
from autograder.course.redact import fresh_seeds, public_checks, public_rubric

from .conftest import ROOT, run_cli

MODULE = '''"""Checks."""
import pytest

SEED = 3

def expected_hidden():
    return 42

def shared(x):
    return x + SEED

@pytest.fixture
def numbers():
    return [1, 2]

@pytest.mark.item("h")
def test_hidden(nb):
    assert nb.get("answer") == expected_hidden() + shared(0)

@pytest.mark.item("p")
def test_public(nb, numbers):
    assert nb.call("f", numbers) == shared(1)
'''


def test_public_checks_drop_hidden_tests_and_what_only_they_use():
    kept = public_checks(MODULE, {"h"})
    assert kept is not None
    names = {node.name for node in ast.parse(kept).body if isinstance(node, ast.FunctionDef)}
    assert names == {"shared", "numbers", "test_public"}
    assert "SEED = 3" in kept and "42" not in kept
    assert public_checks(MODULE, {"h", "p"}) is None
    assert public_checks(MODULE, set()) is not None and "expected_hidden" in public_checks(MODULE, set())


def test_held_out_seeds_are_replaced():
    source = "_PUBLIC_SEED = 4179\n_HELDOUT_SEED = 517_923\nHELDOUT_N: int = 5\n"
    fresh = fresh_seeds(source)
    assert "4179" in fresh and "517923" not in fresh and "517_923" not in fresh
    assert re.search(r"^HELDOUT_N: int = \d+$", fresh, re.M) and "= 5\n" not in fresh


def test_the_public_rubric_keeps_items_but_not_hidden_given_values():
    assignment = load_assignment(ROOT / "tests" / "assignments" / "trivial")
    raw = yaml.safe_load(assignment.rubric_path.read_text(encoding="utf-8"))
    public = public_rubric(raw, assignment.rubric)
    assert "given" not in public["questions"][0]  # question 1's only item is hidden: its expected 42 goes
    assert [q["id"] for q in public["questions"]] == ["1", "2", "3"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    done = run_cli("bundle", "ece4179-2023", "-o", folder / "student.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(folder / "student.zip") as archive:
        archive.extractall(folder / "unpacked")
    return folder / "unpacked" / "ece4179-2023"


def _secrets() -> dict[str, str]:
    """What must not leave the grader: hidden tests, their expected values, held-out seeds,
    solution code, labels."""
    assignment = load_assignment("ece4179-2023")
    hidden = {item.id for _, item in assignment.rubric.items() if item.visibility == "hidden"}
    found = {}
    for check in assignment.checks_dir.glob("check_*.py"):
        for node in ast.parse(check.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and d.args and getattr(d.args[0], "value", None) in hidden
                    for d in node.decorator_list):
                found[f"hidden check {node.name}"] = f"def {node.name}("
    datagen = (assignment.folder / "datagen.py").read_text(encoding="utf-8")
    seed = re.search(r"^_HELDOUT_SEED = ([\d_]+)$", datagen, re.M)
    assert seed is not None
    found["held-out seed"] = seed.group(1).replace("_", "")
    for notebook in assignment.reference_dir.glob("*.ipynb"):
        for cell in nbformat.read(notebook, as_version=4).cells:
            for line in cell.source.splitlines():
                if line.strip().endswith("# SOLUTION"):
                    found[f"solution line of {notebook.name}"] = line.split("#")[0].strip()
    return found


def test_the_bundle_contains_nothing_hidden(bundle: Path):
    secrets = _secrets()
    assert len([k for k in secrets if k.startswith("hidden check")]) >= 1 and len(secrets) >= 4
    texts = {path: path.read_text(encoding="utf-8", errors="replace") for path in bundle.rglob("*") if path.is_file()}
    for path, text in texts.items():
        for what, secret in secrets.items():
            assert secret not in text.replace("_", "") if what == "held-out seed" else secret not in text, (what, path)
    names = {path.relative_to(bundle).as_posix() for path in texts}
    assert not any(n.endswith(("variants.yaml", ".csv", ".pth")) or "reference_solutions" in n for n in names)
    templates = sorted(p.name for p in (ROOT / "student_templates" / "ece4179-2023").glob("*.ipynb"))
    assert sorted(n for n in names if n.endswith(".ipynb")) == templates
    assert "assignment/checks/check_q1.py" not in names  # every item of question 1 is hidden
    assert {"HOW-TO.md", "Q3_regression.ipynb", "data/Task1_1.npz", "grader/pyproject.toml"} <= names


def test_the_bundles_self_check_passes_the_reference_and_fails_the_template(bundle: Path):
    reference = ROOT / "reference_solutions" / "ece4179-2023" / "Q3_regression.ipynb"
    good = run_cli("check", bundle / "assignment", reference, "--sandbox", "local")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "every public automatic item is earned" in good.stdout and "heldout_accuracy" in good.stdout
    template = run_cli("check", bundle / "assignment", bundle / "Q3_regression.ipynb", "--sandbox", "local")
    assert template.returncode == 1
    out = template.stdout
    assert out.index("1. Files") < out.index("2. Public checks") < out.index("3. Marked later")
    assert "public item(s) not yet earned" in out and "by the markers' hidden checks" in out


def test_the_bundles_grader_installs_what_checking_needs_and_not_the_authoring_tools(bundle: Path, tmp_path: Path):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", "--report",
                           str(report), str(bundle / "grader")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [installed] = json.loads(report.read_text(encoding="utf-8"))["install"]
    needs = [r.split(";")[0].strip() for r in installed["metadata"]["requires_dist"] if "extra ==" not in r]
    names = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower() for r in needs}
    assert {"torch", "nbclient", "ipykernel", "pytorch-lightning"} <= names
    assert "otter-grader" not in names  # only course staff generate templates ('autograder[authoring]')
    how_to = (bundle / "HOW-TO.md").read_text(encoding="utf-8")
    assert "--system-site-packages" in how_to and "download.pytorch.org/whl/cpu" in how_to
