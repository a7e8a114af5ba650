"""A small Moodle batch of the trivial assignment, what the cluster tests (Dask and Slurm)
record and check of a batch graded on workers, and a Dask cluster of subprocesses on this
machine (for those tests and bench/batch.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import nbformat

from autograder.grading.moodle import Upload, write_download
from autograder.grading.report import ERROR_FILE, GRADE_FILE
from autograder.marking.batch import BatchEntry, BatchEvents

from .conftest import TRIVIAL_CELLS, notebook

WRONG = (TRIVIAL_CELLS[0], "def double(x):\n    return x", TRIVIAL_CELLS[2])
SLOW = "import time\ntime.sleep(5)"


def _nb(*cells: str) -> bytes:
    return nbformat.writes(notebook(*cells, parameters="SCALE = 1")).encode()


def download(folder: Path, *bodies: tuple[str, ...]) -> Path:
    """A Moodle download of the trivial assignment: one student per tuple of cells."""
    uploads = [Upload(f"Student {n:02d}", str(100 + n), {"trivial.ipynb": _nb(*body)}) for n, body in enumerate(bodies)]
    return write_download(folder / "download.zip", uploads)


class Recorder(BatchEvents):
    def __init__(self) -> None:
        self.started: list[BatchEntry] = []
        self.done_ids: list[str] = []
        self.notes: list[str] = []

    def start(self, entry: BatchEntry) -> None:
        self.started.append(entry)

    def done(self, entry: BatchEntry) -> None:
        self.done_ids.append(entry.id)

    def note(self, text: str) -> None:
        self.notes.append(text)


def totals(entries: list[BatchEntry]) -> dict[str, dict[str, float]]:
    return {entry.id: entry.totals for entry in entries}


def assert_complete(out: Path, ids: list[str], *, also: tuple[str, ...] = ()) -> None:
    """Every submission has a whole grade.json and no error; no other folder is left but
    the command's own (``feedback``) and ``also``."""
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in ("feedback", *also))
    assert folders == sorted(ids)  # no scratch left behind, nothing else
    for name in ids:
        assert json.loads((out / name / GRADE_FILE).read_text(encoding="utf-8"))["submission"] == name
        assert not (out / name / ERROR_FILE).exists()


def assert_lost_once(entries: list[BatchEntry], recorder: Recorder, lost: str,
                     like: str) -> dict[str, dict[str, float]]:
    """Every submission graded, ``lost`` whole (as ``like``, its twin) though its first try's
    worker was lost: it started twice, every other once, and each finished once. The totals."""
    assert [e.status for e in entries] == ["graded"] * len(entries), [e.message for e in entries]
    graded = totals(entries)
    assert graded[lost] == graded[like]  # graded whole, not as the lost try left it
    starts = [e.id for e in recorder.started]
    assert starts.count(lost) == 2 and all(starts.count(i) == 1 for i in graded if i != lost)
    assert sorted(recorder.done_ids) == sorted(graded)
    return graded


@contextlib.contextmanager
def local_dask(folder: Path, workers: int, env: Mapping[str, str]) -> Iterator[str]:
    """A Dask scheduler on a free port of 127.0.0.1 and ``workers`` one-thread workers without
    a nanny (a killed worker stays dead), as subprocesses with ``env`` added to theirs, their
    logs in ``folder``; the scheduler's address once all have joined. All stopped afterwards."""
    from distributed import Client

    file = folder / "scheduler.json"

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(folder / f"{name}.log", "wb") as log:
            return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **env}, start_new_session=True)

    processes = [start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                       "--dashboard-address", ":0", "--scheduler-file", str(file))]
    try:
        for number in range(workers):
            processes.append(start(f"worker-{number}", "distributed.cli.dask_worker", "--scheduler-file", str(file),
                                   "--nworkers", "1", "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                                   "--dashboard-address", ":0", "--death-timeout", "30",
                                   "--local-directory", str(folder / "dask")))
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(file), timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)
            address = client.scheduler.address
        yield address
    finally:
        for process in reversed(processes):  # the workers first: one whose scheduler is gone may hang on SIGTERM
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
