"""Batch throughput: submissions per minute for a Moodle download of trivial submissions,
graded with 1 and with 2 workers (the toy assignment, local sandbox), and with --dask on a
Dask cluster of as many one-thread workers as the largest pool (a scheduler and workers
started here, on 127.0.0.1), against the local pool of the same size.

Each run grades the whole download from scratch into a fresh results folder, exactly as
``autograder grade`` does (intake of the Moodle zip, the worker pool, results written as
each submission finishes, summary.csv kept current), and prints the wall time and the
rate. Worker start-up (about 2 s a worker: a fresh interpreter importing the grader) is
included.

The Dask row counts from the batch's start, with the workers already running (their start
is the cluster's, not the batch's), started without Dask's statistical profiler; the target
is at least 0.9x the local pool's rate. With --slurm, a row for the same batch graded with
``--cluster slurm`` on this machine's Slurm (``.ci/slurm-up`` starts a one-node one), as
many one-CPU worker jobs as the largest pool; the jobs' queueing and start are the batch's
own here, so they are counted.

    python bench/batch.py [--submissions 40] [--workers 1 2] [--dask] [--slurm]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"
sys.path.insert(0, str(ROOT))
from tests.assignments.trivial.solution import CELLS, notebook  # noqa: E402 (the toy assignment's solution)
from tests.batches import local_dask  # noqa: E402 (a Dask cluster of subprocesses, as the tests start it)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also grade on a local Dask cluster (needs distributed)")
    parser.add_argument("--slurm", action="store_true", help="also grade with --cluster slurm (needs a running Slurm)")
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

        def timed(label: str, **where: Any) -> float:
            began = time.perf_counter()
            entries = grade_batch(assignment, [download], out_dir=folder / f"results-{label}", sandbox=LocalSandbox(),
                                  options=GradeOptions(gpus="none"), **where)
            elapsed = time.perf_counter() - began
            rate = args.submissions / elapsed * 60
            print(f"{label}: {elapsed:.1f} s, {rate:.1f} submissions per minute "
                  f"({elapsed / args.submissions:.2f} s each)")
            ungraded = [e.id for e in entries if e.status != "graded"]
            short = [e.id for e in entries if e.status == "graded" and e.totals["auto_points"] < e.totals["auto_max"]]
            if ungraded or short:  # the figures stand, but say what they were measured on
                print(f"  note: {len(ungraded)} not graded {ungraded[:3]}, {len(short)} lost points {short[:3]}: "
                      "the figures above include them")
            return rate

        for workers in args.workers:
            rates[workers] = timed(f"{workers} worker(s)", workers=workers)
        if len(rates) > 1:
            base = rates[min(rates)]
            for workers, rate in sorted(rates.items())[1:]:
                print(f"speed-up with {workers} workers: {rate / base:.2f}x")
        if args.dask:
            size = max(args.workers)
            # a grading cluster's workers are best started without Dask's statistical profiler (it samples
            # the running task's stack every 10 ms: about 7% of a trivial submission's grading time on 2 cores)
            with local_dask(folder, size, {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}) as address:
                dask = timed(f"Dask, {size} worker(s)", cluster=address)
            print(f"Dask with {size} workers against the local pool of {size}: {dask / rates[size]:.2f}x "
                  "(target: at least 0.9x)")
        if args.slurm:
            size = max(args.workers)
            config = folder / "cluster.yaml"
            config.write_text(f"slurm:\n  jobs: {size}\n  cores: 1\n  memory: 1GB\n  host: 127.0.0.1\n",
                              encoding="utf-8")
            slurm = timed(f"Slurm, {size} worker job(s)", cluster="slurm", cluster_config=config)
            print(f"Slurm with {size} worker jobs against the local pool of {size}: {slurm / rates[size]:.2f}x")


if __name__ == "__main__":
    main()
