"""A small Moodle batch of the trivial assignment, and what the cluster tests (Dask and
Slurm) record and check of a batch graded on workers."""

from __future__ import annotations

import json
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
