"""The batch: parallel workers, and a batch killed or interrupted mid-run losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.assignment import load_assignment
from autograder.batch import BatchEntry, BatchEvents, grade_batch
from autograder.pipeline import GradeOptions
from autograder.sandbox import LocalSandbox

from .conftest import TRIVIAL, TRIVIAL_CELLS, run_cli, write_notebook

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
    # As from a terminal: SIGINT handled, even where the tests run as a background job, which
    # inherits SIGINT ignored and would pass that on (a handler, unlike an ignore, ends at exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
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


def test_an_interrupted_batch_stops_cleanly_and_resumes(tmp_path: Path):
    batch, out, process = _running_batch(tmp_path, 6, results=1)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert "interrupted: results written so far are kept; run again to resume" in stderr.decode()
    _wait_gone(process.pid)
    done = list(out.glob("*/grade.json"))
    assert 1 <= len(done) < 6
    again = run_cli("grade", TRIVIAL, batch, "-o", out, "--sandbox", "local")
    assert again.returncode == 0 and f"{len(done)} of 6 submissions already graded" in again.stdout
    assert len(list(out.glob("*/grade.json"))) == 6
