"""Grading end to end through the real command line and the pipeline API."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder.course.assignment import Assignment, load_assignment
from autograder.errors import AssignmentError
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission

from .conftest import ROOT, TRIVIAL, TRIVIAL_CELLS, run_cli, write_notebook

PARTIAL_CELLS = [  # wrong on every fourth point: accuracy 0.75, in the 0.6 band
    *TRIVIAL_CELLS[:2],
    "def classify(x):\n    x = np.asarray(x)\n    return ((x > 0) ^ (np.arange(len(x)) % 4 == 1)).astype(int)",
]


def record(out: Path, ident: str) -> dict:
    return json.loads((out / ident / "grade.json").read_text(encoding="utf-8"))


def items(result: dict) -> dict[str, dict]:
    return {item["id"]: item for item in result["items"]}


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    write_notebook(folder / "alice" / "trivial.ipynb", *TRIVIAL_CELLS)
    write_notebook(folder / "bob" / "Trivial (1).ipynb", *PARTIAL_CELLS)
    (folder / "carol.zip").write_text("this is not a zip", encoding="utf-8")
    (folder / "dave").mkdir()
    (folder / "dave" / "trivial.ipynb").write_bytes(b"")
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[
        nbformat.v3.new_code_cell(input=source) for source in TRIVIAL_CELLS
    ])])
    with zipfile.ZipFile(folder / "erin.zip", "w") as archive:
        archive.writestr("erin/trivial.ipynb", nbformat.v3.writes_json(v3))
    return folder


def test_a_batch_grades_every_submission_and_resumes(batch: Path, tmp_path: Path):
    out = tmp_path / "results"
    done = run_cli("grade", TRIVIAL, batch, "-o", out)
    assert done.returncode == 0, done.stdout + done.stderr

    alice = record(out, "alice")
    assert alice["totals"] == {"auto_points": 9.0, "auto_max": 9.0, "awaiting_marker": 1.0, "max": 10.0}
    assert items(alice)["2b"]["status"] == "manual" and items(alice)["2b"]["reason"] == "awaiting a marker"
    executed = nbformat.read(out / "alice" / "executed" / "trivial.ipynb", as_version=4)
    note, *cells = executed.cells
    assert note.cell_type == "markdown" and note.source.startswith("**Run by the autograder**")
    assert "summary.txt" in note.source and "It read" not in note.source  # trivial reads no dataset
    submitted = nbformat.read(batch / "alice" / "trivial.ipynb", as_version=4)
    assert [c.source for c in cells if "injected-parameters" not in c.metadata.get("tags", [])] == [
        c.source for c in submitted.cells]
    assert "awaiting a marker" in (out / "alice" / "summary.txt").read_text(encoding="utf-8")

    bob = record(out, "bob")
    assert items(bob)["3"]["status"] == "partial" and items(bob)["3"]["points"] == 2.5
    assert "accuracy 0.75" in items(bob)["3"]["reason"] and "earns 50%" in items(bob)["3"]["reason"]
    assert any("graded as trivial.ipynb" in f["message"] for f in bob["findings"])

    carol = record(out, "carol")
    assert "carol.zip cannot be unpacked" in carol["problem"]
    assert all(i["points"] == 0 for i in carol["items"] if i["kind"] == "auto")

    dave = items(record(out, "dave"))
    assert dave["2a"]["points"] == 0 and "is not a valid notebook: it is empty (0 bytes)" in dave["2a"]["reason"]

    assert record(out, "erin")["totals"]["auto_points"] == 9.0  # a format-3 notebook is upgraded

    with (out / "summary.csv").open(encoding="utf-8") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"alice", "bob", "carol", "dave", "erin"}
    assert rows["bob"]["3"] == "2.5" and rows["alice"]["2b"] == ""

    stamp = (out / "alice" / "grade.json").stat().st_mtime_ns
    again = run_cli("grade", TRIVIAL, batch, "-o", out)
    assert again.returncode == 0 and "5 of 5 submissions already graded: skipped" in again.stdout
    assert (out / "alice" / "grade.json").stat().st_mtime_ns == stamp

    write_notebook(batch / "alice" / "trivial.ipynb", *PARTIAL_CELLS)  # changed files are graded again
    third = run_cli("grade", TRIVIAL, batch, "-o", out)
    assert "4 of 5 submissions already graded: skipped" in third.stdout
    assert record(out, "alice")["totals"]["auto_points"] == 6.5


def test_regrade_grades_again(tmp_path: Path):
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    out = tmp_path / "results"
    assert run_cli("grade", TRIVIAL, notebook, "-o", out).returncode == 0
    again = run_cli("grade", TRIVIAL, notebook, "-o", out, "--regrade")
    assert again.returncode == 0 and "skipped" not in again.stdout


def test_parameters_from_the_command_line_reach_the_notebook(tmp_path: Path):
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    out = tmp_path / "results"
    done = run_cli("grade", TRIVIAL, notebook, "-o", out, "--param", "SCALE=3")  # the rubric says 2
    assert done.returncode == 0, done.stderr
    double = items(record(out, "trivial"))["2a"]
    assert double["points"] == 0 and "expected -6, got -9" in double["reason"]
    assert run_cli("grade", TRIVIAL, notebook, "--param", "3").returncode == 2


def test_self_check_shows_public_items_and_exits_by_result(tmp_path: Path):
    good = write_notebook(tmp_path / "good" / "trivial.ipynb", *TRIVIAL_CELLS)
    done = run_cli("check", TRIVIAL, good)
    assert done.returncode == 0, done.stdout
    assert "by the markers' hidden checks (2 points): 1" in done.stdout
    assert "by hand (1 points): 2b" in done.stdout and "every public automatic item is earned" in done.stdout

    stub = write_notebook(tmp_path / "stub" / "trivial.ipynb", "def double(x):\n    ...", "def classify(x):\n    ...")
    done = run_cli("check", TRIVIAL, stub)
    assert done.returncode == 1
    text = " ".join(done.stdout.split())  # the terminal's width folds lines
    assert "double(x) should be numbers, got None" in text
    assert "2 public item(s) not yet earned" in text


def test_usage_errors_have_their_own_exit_codes(tmp_path: Path):
    done = run_cli("grade", "no-such-assignment", tmp_path)
    assert done.returncode == 2 and "unknown assignment 'no-such-assignment'" in done.stderr
    done = run_cli("grade", TRIVIAL, tmp_path / "missing.ipynb")
    assert done.returncode == 2 and "missing.ipynb: no such file or folder" in done.stderr

    broken = tmp_path / "broken"
    shutil.copytree(TRIVIAL, broken)
    rubric = yaml.safe_load((broken / "rubric.yaml").read_text(encoding="utf-8"))
    rubric["questions"][1]["items"][0]["points"] = "two"
    (broken / "rubric.yaml").write_text(yaml.safe_dump(rubric), encoding="utf-8")
    done = run_cli("grade", broken, tmp_path)
    assert done.returncode == 3
    assert "question '2' › item '2a' › field 'points'" in done.stderr and str(broken / "rubric.yaml") in done.stderr


def _assignment_with_checks(tmp_path: Path, source: str) -> Assignment:
    folder = tmp_path / "assignment"
    shutil.copytree(TRIVIAL, folder)
    (folder / "checks" / "check_trivial.py").write_text(source, encoding="utf-8")
    return load_assignment(folder)


# Deliberately broken checks: a check that raises and a check that skips must both score 0
# with status `error` (the grader's fault, for a person to look at), never count as done.
CHECKS_WITH_A_GRADER_BUG = '''
import pytest

@pytest.mark.item("1")
def test_answer(nb, given):
    return given["no such key"]

@pytest.mark.item("2a")
def test_double(nb):  # the case under test: a check that skips is the grader's error, never points
    pytest.skip("not written yet")

@pytest.mark.item("3")
def test_accuracy(nb, measure):
    measure(1.0)
'''


def test_a_check_that_breaks_is_a_grader_error_not_a_student_failure(tmp_path: Path):
    assignment = _assignment_with_checks(tmp_path, CHECKS_WITH_A_GRADER_BUG)
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    grade = grade_submission(assignment, open_submission(notebook), sandbox="local")
    by_id = {item.id: item for item in grade.items}
    assert by_id["1"].status == "error" and "grader error: KeyError" in by_id["1"].reason
    assert by_id["2a"].status == "error" and "skipped" in by_id["2a"].reason
    assert by_id["1"].points is None and by_id["2a"].points is None  # withheld for a marker, not 0
    assert {item.id for item in grade.awaiting} >= {"1", "2a"}
    assert by_id["3"].status == "passed"


CHECKS_THAT_MEASURE = '''
import pytest

@pytest.mark.item("1")
def test_answer(nb, given, measure):
    measure(0.25, name="noise std", note="16 images")
    measure(3.0, reference=2.5, name="loss")

@pytest.mark.item("2a")
def test_double(nb): assert list(nb.call("double", [1, 2])) == [2, 4]

@pytest.mark.item("3")
def test_accuracy(nb, measure): measure(0.95)
'''


def test_what_a_check_measured_is_shown_for_items_without_a_metric(tmp_path: Path):
    assignment = _assignment_with_checks(tmp_path, CHECKS_THAT_MEASURE)
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    by_id = {item.id: item for item in grade_submission(assignment, open_submission(notebook), sandbox="local").items}
    assert by_id["1"].status == "passed"
    assert by_id["1"].reason == "noise std 0.25 (16 images); loss 3 (reference 2.5)"
    assert by_id["2a"].reason == ""
    assert by_id["3"].reason.startswith("accuracy 0.95: ≥ 0.9, full marks")


def test_checks_that_disagree_with_the_rubric_stop_grading(tmp_path: Path):
    source = 'import pytest\n\n@pytest.mark.item("9")\ndef test_x(nb):\n    pass\n'
    assignment = _assignment_with_checks(tmp_path, source)
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    with pytest.raises(AssignmentError) as caught:
        grade_submission(assignment, open_submission(notebook), sandbox="local")
    message = str(caught.value)
    assert "item '9' is not in the rubric" in message
    assert "item '1' is automatic but no check is marked for it" in message
    done = run_cli("grade", assignment.folder, notebook, "-o", tmp_path / "out")
    assert done.returncode == 3 and "do not match its rubric" in done.stderr


def test_staff_can_run_the_checks_with_plain_pytest(tmp_path: Path):
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    command = [sys.executable, "-m", "pytest", str(TRIVIAL / "checks"), "--ag-submission", str(notebook),
               "--ag-sandbox", "local", "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout
    assert "3 passed" in done.stdout and "automatic 9 / 9" in done.stdout
    assert " workers" not in done.stdout  # the project's -n auto does not split one submission's session

    wrong = write_notebook(tmp_path / "wrong" / "trivial.ipynb", "answer = 41", *TRIVIAL_CELLS[1:])
    command[command.index(str(notebook))] = str(wrong)
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1 and "answer: expected 42" in done.stdout


def test_staff_can_run_a_course_assignments_checks_on_one_notebook_with_plain_pytest(tmp_path: Path):
    """One reference notebook of a real assignment (whose other notebooks read datasets):
    the checks of its items run and pass, the other notebooks' are not part of the run."""
    command = [sys.executable, "-m", "pytest", str(ROOT / "rubrics" / "ece4179-2023" / "checks"), "--ag-submission",
               str(ROOT / "reference_solutions" / "ece4179-2023" / "Q3_regression.ipynb"), "--ag-sandbox", "local",
               "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    totals = re.search(r"Q3_regression\s+automatic (\S+) / (\S+)", done.stdout)
    assert totals and totals.group(1) == totals.group(2) and float(totals.group(2)) > 0, done.stdout
    assert re.search(r"\b\d+ passed\b", done.stdout) and " failed" not in done.stdout
    assert "Q5_gtsrb.ipynb was not given" in done.stdout


def test_question_1_answers_come_from_the_declared_weights(tmp_path: Path):
    """Change w36 in the rubric's copy: the unchanged reference must now lose what depends on it."""
    (tmp_path / "rubrics").mkdir()
    shutil.copytree(ROOT / "rubrics" / "ece4179-2023", tmp_path / "rubrics" / "ece4179-2023")
    (tmp_path / "student_templates").symlink_to(ROOT / "student_templates")
    path = tmp_path / "rubrics" / "ece4179-2023" / "rubric.yaml"
    rubric = yaml.safe_load(path.read_text(encoding="utf-8"))
    rubric["questions"][0]["given"]["weights"]["w36"] = -0.3
    path.write_text(yaml.safe_dump(rubric), encoding="utf-8")
    assignment = Assignment(path, home=ROOT)
    only_q1 = GradeOptions(notebooks=("Q1_Q2_calculations.ipynb",))  # it reads no dataset
    grade = grade_submission(assignment, ROOT / "reference_solutions" / "ece4179-2023", options=only_q1,
                             sandbox="local")
    lost = {i.id for i in grade.items if i.question == "1" and i.kind == "auto" and i.points == 0}
    assert lost == {"1.1", "1.2", "1.3", "1.4"}  # w25's update is 0 either way: neuron 5 is inactive


def test_self_checking_one_notebook_checks_only_its_items():
    reference = ROOT / "reference_solutions" / "ece4179-2023" / "Q1_Q2_calculations.ipynb"
    done = run_cli("check", "ece4179-2023", reference)
    assert done.returncode == 0, done.stdout
    text = " ".join(done.stdout.split())  # the terminal's width folds lines
    assert re.search(r"\b2b 1 / 1 passed\b", text)
    hidden = re.search(r"by the markers' hidden checks \(6 points\): ([^\n]*?) in the notebooks", text)
    assert hidden and "1.4" in hidden.group(1)  # hidden: markers see it, students do not
    assert re.search(r"in the notebooks not given here \(\d+ points\): [^\n]*\b3\.2f\b", text)


def test_a_batch_without_the_data_it_needs_stops_with_one_clear_message(tmp_path: Path):
    reference = ROOT / "reference_solutions" / "ece4179-2023"
    done = run_cli("grade", "ece4179-2023", reference, "-o", tmp_path / "out")
    assert done.returncode == 2
    assert "give --data DIR (the course's data folder) or --synthetic" in done.stderr


def test_the_self_check_stops_slow_cells_at_the_rubrics_limit_and_says_so(tmp_path: Path):
    assignment = tmp_path / "assignment"
    shutil.copytree(TRIVIAL, assignment)
    rubric = yaml.safe_load((assignment / "rubric.yaml").read_text(encoding="utf-8"))
    # A limit the notebook's other cells meet on a loaded machine (importing numpy in a fresh
    # kernel can take seconds there), far below the slow cell's 300 s.
    rubric["limits"]["check_cell_timeout_s"] = 8
    (assignment / "rubric.yaml").write_text(yaml.safe_dump(rubric), encoding="utf-8")
    slow = write_notebook(tmp_path / "slow" / "trivial.ipynb", "import time\ntime.sleep(300)", *TRIVIAL_CELLS)
    began = time.monotonic()
    done = run_cli("check", assignment, slow, "--sandbox", "local")
    assert time.monotonic() - began < 200  # the 300 s cell was not waited for
    text = " ".join(done.stdout.split())
    assert "was stopped after 8 s, the self-check's limit per cell (--cell-timeout to allow more)" in text, text
    assert done.returncode == 0 and "\x1b[" not in done.stdout  # later cells ran; plain text in a notebook cell
