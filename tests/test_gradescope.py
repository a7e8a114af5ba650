"""The Gradescope autograder zip, run as Gradescope runs it, in an /autograder-shaped folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from .conftest import TRIVIAL_CELLS, run_cli, trivial_copy, write_notebook

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope-results.schema.json").read_text())
DUE = datetime(2024, 5, 1, 23, 59, tzinfo=timezone.utc)
SNOOP = ("import pathlib\ntry:\n    print(pathlib.Path({path!r}).read_text())\n"
         "except Exception as error:\n    print('no', error)")


def _autograder(tmp_path: Path, **rubric_extra: object) -> Path:
    assignment = trivial_copy(tmp_path / "assignment", policy={"due": DUE.isoformat(), "late_penalty_per_day": 0.2,
                                                               "not_assessed_after_days": 7}, **rubric_extra)
    out = tmp_path / "autograder.zip"
    done = run_cli("gradescope", assignment, "-o", out)
    assert done.returncode == 0, done.stderr
    return out


def _gradescope_root(tmp_path: Path, archive: Path, name: str, *cells: str, late: timedelta,
                     run: bool = True, **env_extra: str) -> Path:
    root = tmp_path / name
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
    write_notebook(root / "submission" / "trivial.ipynb", *cells)
    metadata = {"id": 1, "created_at": (DUE + late).isoformat(), "assignment": {"due_date": DUE.isoformat()},
                "users": [{"email": "jane@example.edu", "id": 7, "name": "Jane Doe"}]}
    (root / "submission_metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    if run:
        done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=_env(root, **env_extra),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return root


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "AUTOGRADER_GS_ROOT": str(root), "AUTOGRADER_GS_PYTHON": sys.executable, **extra}


def test_the_zip_has_gradescope_scripts_at_its_root(tmp_path: Path):
    with zipfile.ZipFile(_autograder(tmp_path)) as bundle:
        names = set(bundle.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in bundle.infolist()}
        run = bundle.read("run_autograder").decode()
        setup = bundle.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "assignment/rubric.yaml", "assignment/checks/check_trivial.py",
            "grader/pyproject.toml", "grader/autograder/cli.py"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert "gradescope-run" in run and "pip install -q /autograder/source/grader" in setup
    assert not any(name.startswith("reference_solutions") for name in names)


def test_run_autograder_grades_the_reference_and_a_broken_submission(tmp_path: Path):
    archive = _autograder(tmp_path)
    good = _gradescope_root(tmp_path, archive, "good", *TRIVIAL_CELLS, late=-timedelta(hours=1))
    results = json.loads((good / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 9
    tests = {test["number"]: test for test in results["tests"]}
    assert set(tests) == {"1", "2a", "3"}  # the manual item is Gradescope's manual grading, listed in the output
    assert tests["1"]["visibility"] == "after_published" and tests["2a"]["visibility"] == "visible"
    assert results["visibility"] == "after_published"  # the total, which counts the hidden item 1, waits too
    assert "Public items: 7 / 7." in results["output"] and "9" not in results["output"].split("Public items")[1][:12]
    assert all(test["status"] == "passed" and test["score"] == test["max_score"] for test in tests.values())
    assert results["leaderboard"] == [{"name": "3 accuracy", "value": 1.0, "order": "desc"}]
    assert "Marked by hand: 2b (1)" in results["output"]

    hidden_check = str(good / "source" / "assignment" / "checks" / "check_trivial.py")
    broken = _gradescope_root(tmp_path, archive, "broken", TRIVIAL_CELLS[0], TRIVIAL_CELLS[1],
                              "def classify(x):\n    raise ValueError('boom')", SNOOP.format(path=hidden_check),
                              late=timedelta(days=1, hours=2))
    results = json.loads((broken / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, SCHEMA)
    tests = {test["number"]: test for test in results["tests"]}
    assert (tests["3"]["status"], tests["3"]["score"]) == ("failed", 0)
    assert "ValueError: boom" in tests["3"]["output"] and "```" in tests["3"]["output"]
    assert "Needs ≥ 0.9 for full marks, ≥ 0.6 for 50%." in tests["3"]["output"]
    assert results["score"] == pytest.approx(4 - 0.4 * 9)  # 2 days late: 40% of the automatic maximum, 9
    assert "2 days late" in results["output"]
    executed = (broken / "results" / "grade" / "executed" / "trivial.ipynb").read_text(encoding="utf-8")
    assert "def test_answer" not in executed and "no [Errno" in executed  # the hidden check was not readable


@pytest.mark.skipif(os.geteuid() != 0, reason="permissions hide the source only from a user of its own (root grader)")
def test_where_namespaces_are_refused_permissions_hide_the_source(tmp_path: Path):
    """Gradescope's container refuses the namespaces of a root of its own (simulated): the
    hidden checks are still unreadable to students' code, and grade.json says which walls stood."""
    archive = _autograder(tmp_path)
    world = Path(tempfile.mkdtemp(prefix="autograder-test-gradescope-", dir="/var/tmp"))
    world.chmod(0o755)  # as /autograder is: every user may enter it, and the unpacked files are 0644
    root = world / "refused"
    hidden_check = str(root / "source" / "assignment" / "checks" / "check_trivial.py")
    try:
        _gradescope_root(world, archive, "refused", *TRIVIAL_CELLS, SNOOP.format(path=hidden_check),
                         late=-timedelta(hours=1), AUTOGRADER_JAIL="permissions")
    finally:
        results = {path: path.read_text(encoding="utf-8") for path in (root / "results").rglob("*.json")}
        executed = (root / "results" / "grade" / "executed" / "trivial.ipynb").read_text(encoding="utf-8")
        shutil.rmtree(world, ignore_errors=True)
    assert "def test_answer" not in executed and "no [Errno 13]" in executed
    record = json.loads(results[root / "results" / "grade" / "grade.json"])
    assert record["sandbox"]["trivial.ipynb"]["walls"] == "permissions"
    assert json.loads(results[root / "results" / "results.json"])["score"] == 9


SLOW = "import time\ntime.sleep(600)"


def test_a_run_that_outlasts_the_platforms_timeout_ends_within_it_with_what_was_graded(tmp_path: Path):
    """The rubric says what the Gradescope assignment allows: the grader stops the notebook
    within it, grades what ran and says "not graded: time budget" for the rest."""
    archive = _autograder(tmp_path, gradescope={"timeout_s": 40, "margin_s": 10})
    began = time.monotonic()
    root = _gradescope_root(tmp_path, archive, "slow", TRIVIAL_CELLS[0], SLOW, *TRIVIAL_CELLS[1:],
                            late=-timedelta(hours=1))
    assert time.monotonic() - began < 40 + 60  # the budget, and the checks after it on a loaded machine
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, SCHEMA)
    tests = {test["number"]: test for test in results["tests"]}
    assert tests["1"]["status"] == "passed"  # its cell ran before the slow one
    assert tests["2a"]["status"] == "failed" and "not graded: time budget" in tests["2a"]["output"]
    assert "Public items: 0 / 7." in results["output"] and "Hidden items are graded too" in results["output"]


def test_a_run_the_platform_kills_leaves_a_valid_results_json(tmp_path: Path):
    archive = _autograder(tmp_path)
    root = _gradescope_root(tmp_path, archive, "killed", SLOW, *TRIVIAL_CELLS, late=-timedelta(hours=1), run=False)
    process = subprocess.Popen(["bash", str(root / "source" / "run_autograder")], env=_env(root),
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = root / "results" / "results.json"
    try:
        deadline = time.monotonic() + 120
        while not results.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # into the slow cell
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # as Gradescope stops a run past its timeout
        process.wait()
    document = json.loads(results.read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    assert {test["number"] for test in document["tests"]} == {"1", "2a", "3"}
    assert all(test["score"] == 0 and "not graded" in test["output"] for test in document["tests"])
    assert {test["number"]: test["visibility"] for test in document["tests"]}["1"] == "after_published"


def test_the_schema_can_fail():
    document = {"score": 1, "tests": [{"score": 1, "max_score": 1, "status": "partial", "name": "x"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tests": [{"name": "no score"}]}, SCHEMA)
    jsonschema.validate({"tests": [{"name": "x", "score": 0}]}, SCHEMA)


def test_setup_stops_on_a_base_image_whose_python_is_too_old(tmp_path: Path):
    with zipfile.ZipFile(_autograder(tmp_path)) as bundle:
        setup = bundle.read("setup.sh").decode()
    check = setup[setup.index("python3 -c 'import sys"):setup.index("python3 -m venv")]
    fake = tmp_path / "bin" / "python3"  # Ubuntu 20.04's
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.8.10" && exit 0\nexit 1\n', encoding="utf-8")
    fake.chmod(0o755)
    old_image = {**os.environ, "PATH": f"{fake.parent}:/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", f"set -e\n{check}echo ok"], env=old_image, capture_output=True, text=True)
    assert done.returncode == 1 and "Python 3.8.10, older than 3.10: choose Ubuntu 22.04 or later" in done.stderr
    done = subprocess.run(["bash", "-c", f"set -e\n{check}echo ok"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok"  # this machine's Python is new enough
