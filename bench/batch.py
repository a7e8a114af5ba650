"""Batch throughput: submissions per minute for a Moodle download of trivial submissions,
graded with 1 and with 2 workers (the toy assignment, local sandbox).

Each run grades the whole download from scratch into a fresh results folder, exactly as
``autograder grade`` does (intake of the Moodle zip, the worker pool, results written as
each submission finishes, summary.csv kept current), and prints the wall time and the
rate. Worker start-up (about 2 s a worker: a fresh interpreter importing the grader) is
included.

    python bench/batch.py [--submissions 40] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"
sys.path.insert(0, str(ROOT))
from tests.assignments.trivial.solution import CELLS, notebook  # noqa: E402 (the toy assignment's solution)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from autograder.course.assignment import load_assignment
    from autograder.grading.moodle import Upload, write_download
    from autograder.grading.pipeline import GradeOptions
    from autograder.marking.batch import grade_batch
    from autograder.sandboxes.sandbox import LocalSandbox

    assignment = load_assignment(TRIVIAL)
    content = nbformat.writes(notebook(*CELLS, parameters="SCALE = 1")).encode()
    print(f"{args.submissions} trivial submissions in a Moodle download; {os.cpu_count()} CPU cores; local sandbox")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        uploads = [Upload(f"Student {n:03d}", str(1000 + n), {"trivial.ipynb": content})
                   for n in range(args.submissions)]
        download = write_download(folder / "download.zip", uploads)
        rates = {}
        for workers in args.workers:
            began = time.perf_counter()
            entries = grade_batch(assignment, [download], out_dir=folder / f"results-{workers}", workers=workers,
                                  sandbox=LocalSandbox(), options=GradeOptions(gpus="none"))
            elapsed = time.perf_counter() - began
            rates[workers] = args.submissions / elapsed * 60
            print(f"{workers} worker(s): {elapsed:.1f} s, {rates[workers]:.1f} submissions per minute "
                  f"({elapsed / args.submissions:.2f} s each)")
            ungraded = [e.id for e in entries if e.status != "graded"]
            short = [e.id for e in entries if e.status == "graded" and e.totals["auto_points"] < e.totals["auto_max"]]
            if ungraded or short:  # the figures stand, but say what they were measured on
                print(f"  note: {len(ungraded)} not graded {ungraded[:3]}, {len(short)} lost points {short[:3]}: "
                      "the figures above include them")
        if len(rates) > 1:
            base = rates[min(rates)]
            for workers, rate in sorted(rates.items())[1:]:
                print(f"speed-up with {workers} workers: {rate / base:.2f}x")


if __name__ == "__main__":
    main()
