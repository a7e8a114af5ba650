"""The batch: parallel workers, a batch killed or stopped by a signal mid-run losing nothing,
its progress in a log file as it happens, and bad arguments refused before anything slow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder import cli
from autograder.course.assignment import load_assignment
from autograder.errors import UsageError
from autograder.grading.pipeline import GradeOptions, open_run
from autograder.marking.batch import BatchEntry, BatchEvents, check_arguments, grade_batch
from autograder.sandboxes.sandbox import LocalSandbox

from .conftest import ROOT, TRIVIAL, TRIVIAL_CELLS, run_cli, write_notebook

SLOW = "import time\ntime.sleep(1.0)"


def _batch(folder: Path, count: int, *cells: str) -> Path:
    for number in range(count):
        body = TRIVIAL_CELLS if number % 3 else (TRIVIAL_CELLS[0], "def double(x):\n    return x", TRIVIAL_CELLS[2])
        write_notebook(folder / f"student{number:02d}.ipynb", *cells, *body)
    return folder


class Recorder(BatchEvents):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def start(self, entry: BatchEntry) -> None:
        self.events.append(("start", entry.id))

    def done(self, entry: BatchEntry) -> None:
        self.events.append(("done", entry.id))


def test_two_workers_give_the_same_grades_as_one(tmp_path: Path):
    batch = _batch(tmp_path / "batch", 6)
    assignment = load_assignment(TRIVIAL)
    results = {}
    for workers in (1, 2):
        recorder = Recorder()
        entries = grade_batch(assignment, [batch], out_dir=tmp_path / f"out{workers}", workers=workers,
                              sandbox=LocalSandbox(), events=recorder, options=GradeOptions())
        assert [e.status for e in entries] == ["graded"] * 6
        results[workers] = {e.id: e.totals for e in entries}
        assert sorted(i for event, i in recorder.events if event == "start") == sorted(results[workers])
        assert sorted(i for event, i in recorder.events if event == "done") == sorted(results[workers])
    assert results[1] == results[2]
    assert [results[2][f"student{n:02d}"]["auto_points"] for n in range(3)] == [7.0, 9.0, 9.0]
    sandboxes = {json.loads((tmp_path / "out2" / e / "grade.json").read_text())["sandbox"]["trivial.ipynb"].get("uid")
                 for e in results[2]}
    if os.geteuid() == 0:  # each worker runs students' code as a user of its own
        assert len(sandboxes) == 2 and all(uid >= 61000 for uid in sandboxes)


def _group_alive(group: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _running_batch(folder: Path, count: int, *, results: int) -> tuple[Path, Path, subprocess.Popen[bytes]]:
    """A batch of ``count`` slow submissions graded by the real command with 2 workers, once
    ``results`` of them are done."""
    batch, out = _batch(folder / "batch", count, SLOW), folder / "results"
    command = [sys.executable, "-m", "autograder", "grade", str(TRIVIAL), str(batch), "-o", str(out), "-j", "2",
               "--sandbox", "local"]
    # As from a terminal: SIGINT and SIGHUP handled, even where the tests run as a background
    # job or under nohup, which inherit them ignored and would pass that on (a handler, unlike
    # an ignore, ends at exec).
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_DFL)}
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    deadline = time.monotonic() + 180
    while len(list(out.glob("*/grade.json"))) < results:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.1)
    return batch, out, process


def _wait_gone(group: int) -> None:
    deadline = time.monotonic() + 30
    while _group_alive(group):
        assert time.monotonic() < deadline, f"processes of the killed batch live on: {_group_alive(group)}"
        time.sleep(0.1)


def test_a_batch_killed_outright_loses_nothing_and_regrades_nothing(tmp_path: Path):
    batch, out, process = _running_batch(tmp_path, 8, results=3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _wait_gone(process.pid)  # the workers end with the batch process
    graded = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/grade.json")}
    assert 3 <= len(graded) < 8
    for name in graded:
        json.loads((out / name / "grade.json").read_text(encoding="utf-8"))  # complete, never half-written

    again = run_cli("grade", TRIVIAL, batch, "-o", out, "-j", "2", "--sandbox", "local")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(graded)} of 8 submissions already graded: skipped" in again.stdout
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/grade.json") if p.parent.name in graded} == graded
    assert len(list(out.glob("*/grade.json"))) == 8
    summary = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(summary) == 9  # the header and every submission once


@pytest.mark.parametrize(("signum", "group"), [(signal.SIGINT, False), (signal.SIGHUP, False), (signal.SIGTERM, True)],
                         ids=["SIGINT", "SIGHUP", "SIGTERM-to-the-group"])
def test_a_batch_stopped_by_a_signal_stops_cleanly_says_what_is_left_and_resumes(tmp_path: Path, signum: int,
                                                                                group: bool):
    """The group: as systemd stops a service (the batch process gets the signal with its workers)."""
    batch, out, process = _running_batch(tmp_path, 6, results=1)
    (os.killpg if group else os.kill)(process.pid, signum)
    _, raw = process.communicate(timeout=60)
    stderr = raw.decode()
    assert process.returncode == 128 + signum, stderr
    _wait_gone(process.pid)  # the workers, and the kernels they ran, are gone
    done = list(out.glob("*/grade.json"))
    assert 1 <= len(done) < 6
    for path in done:
        json.loads(path.read_text(encoding="utf-8"))  # complete, never half-written
    said = re.search(rf"interrupted by {signal.Signals(signum).name}: (\d) of 6 submissions not graded; "
                     "results written so far are kept; run again to resume", " ".join(stderr.split()))
    assert said, stderr
    # a worker (of 2) may have written its result an instant before the batch took note of it
    assert 6 - len(done) <= int(said.group(1)) <= 8 - len(done)
    if signum == signal.SIGTERM:  # resuming is the same after any signal: proven once
        again = run_cli("grade", TRIVIAL, batch, "-o", out, "--sandbox", "local")
        assert again.returncode == 0 and f"{len(done)} of 6 submissions already graded" in again.stdout
        assert len(list(out.glob("*/grade.json"))) == 6


def test_without_a_terminal_each_submission_and_the_progress_are_logged_as_they_happen(tmp_path: Path):
    batch = _batch(tmp_path / "batch", 4, "import time\ntime.sleep(2)")
    out, log = tmp_path / "results", tmp_path / "log"
    command = [sys.executable, "-m", "autograder", "grade", str(TRIVIAL), str(batch), "-o", str(out), "-j", "1",
               "--sandbox", "local"]
    env = {**os.environ, "AUTOGRADER_PROGRESS_EVERY_S": "0.5"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"✓ student00: 7 / 9 automatic .*\n(.*\n)*progress: 1/4 done, 1 running \(student01\), "
                            r"eta \d+:\d\d:\d\d", log.read_text(encoding="utf-8")):
            assert process.poll() is None, f"the batch ended before its log showed progress:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.1)
        assert len(list(out.glob("*/grade.json"))) < 4  # still grading: the log is written as it goes
    finally:
        process.wait(timeout=180)
    text = log.read_text(encoding="utf-8")
    assert process.returncode == 0, text
    assert "grading trivial: 4 submissions found, 4 to grade" in text
    assert [line.split(":")[0] for line in text.splitlines() if line.startswith("✓")] == [
        f"✓ student{n:02d}" for n in range(4)]
    assert "\x1b[" not in text  # plain text, no terminal codes


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: object) -> str:
    """Run ``grade`` in this process with ``args``; it must be refused with a UsageError
    before the sandbox is made or probed. Returns the message."""
    probed: list[str] = []
    monkeypatch.setattr(cli, "make_sandbox", lambda kind, **_: probed.append(kind) or LocalSandbox())
    result = CliRunner().invoke(cli.cli, ["grade", *map(str, args), "-o", str(tmp_path / "out"),
                                          "--sandbox", "local"])
    assert isinstance(result.exception, UsageError), (result.exception, result.output)
    assert probed == [], "the sandbox was probed before the arguments were checked"
    assert not (tmp_path / "out").exists()
    return str(result.exception)


def test_bad_arguments_are_refused_before_the_sandbox_is_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    missing = tmp_path / "nowhere.zip"
    assert _refused(tmp_path, monkeypatch, TRIVIAL, notebook, missing) == f"{missing}: no such file or folder"
    sheet = tmp_path / "grades.csv"
    sheet.write_text("Name,Points\nJane,3\n", encoding="utf-8")
    said = _refused(tmp_path, monkeypatch, TRIVIAL, notebook, "--worksheet", sheet)
    assert str(sheet) in said and "not a Moodle grading worksheet" in said
    marks = tmp_path / "marks.csv"
    marks.write_bytes(b"\xff\xfe\x00")
    assert str(marks) in _refused(tmp_path, monkeypatch, TRIVIAL, notebook, "--marks", marks)
    assert "--param '3'" in _refused(tmp_path, monkeypatch, TRIVIAL, notebook, "--param", "3")
    assert "--memory 'lots'" in _refused(tmp_path, monkeypatch, TRIVIAL, notebook, "--memory", "lots")
    reference = ROOT / "reference_solutions" / "ece4179-2023"
    assert "give --data DIR" in _refused(tmp_path, monkeypatch, "ece4179-2023", reference)
    (tmp_path / "data").mkdir()
    said = _refused(tmp_path, monkeypatch, "ece4179-2023", reference, "--data", tmp_path / "data")
    assert f"{tmp_path / 'data'} does not hold the datasets needed" in said
    monkeypatch.setenv("AUTOGRADER_PROGRESS_EVERY_S", "soon")
    assert "AUTOGRADER_PROGRESS_EVERY_S='soon'" in _refused(tmp_path, monkeypatch, TRIVIAL, notebook)


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_the_data_a_batch_needs_is_what_its_submitted_notebooks_read(tmp_path: Path):
    course = load_assignment(ROOT / "rubrics" / "ece4179-2023")
    reference = ROOT / "reference_solutions" / "ece4179-2023"
    early = {name: (reference / name).read_bytes() for name in ("Q1_Q2_calculations.ipynb", "Q3_regression.ipynb")}
    plain = GradeOptions()
    assert check_arguments(course, [_zip(tmp_path / "JaneDoe_1.zip", early)], plain) == []
    # A Moodle download: one student's zip inside it holds Q4 under a looser name.
    inner = _zip(tmp_path / "inner.zip", {"work/q4_denoising_autoencoder.ipynb": b"{}"}).read_bytes()
    download = _zip(tmp_path / "moodle.zip", {"Jane Doe_11_assignsubmission_file_/Q1_Q2_calculations.ipynb": b"{}",
                                              "John Roe_12_assignsubmission_file_/JohnRoe_12.zip": inner})
    with pytest.raises(UsageError, match="give --data DIR") as refused:
        check_arguments(course, [download], plain)
    assert "the submissions hold Q4_denoising_autoencoder.ipynb, which read datasets" in str(refused.value)
    assert check_arguments(course, [download], GradeOptions(synthetic=True)) == ["faces"]
    folder = tmp_path / "folder"
    (folder / "alice").mkdir(parents=True)
    (folder / "alice" / "Q5_gtsrb.ipynb").write_text("{}", encoding="utf-8")
    assert check_arguments(course, [folder], GradeOptions(synthetic=True)) == ["gtsrb"]
    assert check_arguments(course, [folder], GradeOptions(synthetic=True, notebooks=("Q3_regression.ipynb",))) == []
    # One submission opens only its own notebooks' datasets.
    with open_run(course, _zip(tmp_path / "Only_Q4.zip", {"Q4_denoising_autoencoder.ipynb": b"{}"}),
                  options=GradeOptions(synthetic=True)) as run:
        assert run.data is not None and run.data.names == ["faces"]
    with open_run(course, tmp_path / "JaneDoe_1.zip", options=plain) as run:
        assert run.data is None


def test_a_submission_of_notebooks_that_read_no_dataset_is_graded_without_data(tmp_path: Path):
    reference = ROOT / "reference_solutions" / "ece4179-2023" / "Q1_Q2_calculations.ipynb"
    submission = _zip(tmp_path / "JaneDoe_1.zip", {reference.name: reference.read_bytes()})
    done = run_cli("grade", "ece4179-2023", submission, "-o", tmp_path / "out", "--sandbox", "local")
    assert done.returncode == 0, done.stderr + done.stdout
    grade = json.loads((tmp_path / "out" / "JaneDoe_1" / "grade.json").read_text(encoding="utf-8"))
    earned = {item["id"]: item["status"] for item in grade["items"] if item["id"].startswith(("1", "2"))}
    assert earned and set(earned.values()) <= {"passed", "manual"}, earned


def test_a_bad_argument_exits_2_naming_the_file_without_announcing_a_sandbox(tmp_path: Path):
    notebook = write_notebook(tmp_path / "sub" / "trivial.ipynb", *TRIVIAL_CELLS)
    done = run_cli("grade", TRIVIAL, notebook, tmp_path / "nowhere.zip", "-o", tmp_path / "out", "--sandbox", "local")
    assert done.returncode == 2 and f"{tmp_path / 'nowhere.zip'}: no such file or folder" in done.stderr
    assert "students' code runs in" not in done.stderr  # said once the sandbox is probed


def test_inputs_that_hold_nothing_to_grade_are_named_and_the_rest_is_graded(tmp_path: Path):
    good = write_notebook(tmp_path / "inputs" / "alice.ipynb", *TRIVIAL_CELLS)
    corrupt, empty, other = tmp_path / "corrupt.zip", tmp_path / "empty.zip", tmp_path / "notes.txt"
    corrupt.write_text("this is not a zip", encoding="utf-8")
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "nothing to grade")
    other.write_text("hello", encoding="utf-8")
    out = tmp_path / "results"
    done = run_cli("grade", TRIVIAL, corrupt, good, empty, other, "-o", out, "--sandbox", "local")
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 5, text
    assert f"{corrupt}: not a zip file" in text and f"{empty}: holds no notebook or submission" in text
    assert f"{other}: not a notebook, zip or folder" in text
    assert "3 input(s) hold nothing to grade (the rest was graded)" in text
    assert sorted(p.parent.name for p in out.glob("*/grade.json")) == ["alice"]  # no student "corrupt" or "empty"
    assert json.loads((out / "alice" / "grade.json").read_text(encoding="utf-8"))["totals"]["auto_points"] == 9.0
    assert (out / "gradebook.csv").exists()  # published all the same
