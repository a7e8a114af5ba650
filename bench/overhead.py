"""Harness overhead per submission: kernel start, execution, checks and report, for a
trivial three-question notebook (the toy assignment in tests/assignments/trivial).

Prints the stages of one submission, the median over a batch graded in one process,
the median of cold runs of the command line, and, as its last line, the median
seconds per submission in a batch. Target: at most 1.5 s on a 2-core machine.

    python bench/overhead.py [--submissions 12] [--cold-runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"
sys.path.insert(0, str(ROOT))
from tests.assignments.trivial.solution import write_solution  # noqa: E402 (the toy assignment's solution)


def write_submissions(folder: Path, count: int) -> list[Path]:
    return [write_solution(folder / f"student{i:02d}" / "trivial.ipynb").parent for i in range(count)]


def stages(assignment, submission_path: Path, out: Path) -> dict[str, float]:
    """One submission, stage by stage (the same calls grade_submission makes)."""
    from autograder.grading.check import run_checks
    from autograder.grading.intake import digest, open_submission
    from autograder.grading.pipeline import GradeOptions, start
    from autograder.grading.report import write_submission
    from autograder.grading.score import score

    times = {}
    began = time.perf_counter()
    submission = open_submission(submission_path)
    started = start(assignment, submission, options=GradeOptions(), sandbox="local")
    times["intake, preflight, kernel start and execution"] = time.perf_counter() - began
    mark = time.perf_counter()
    log = run_checks(started.session)
    times["checks (pytest in-process, probes)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    grade = score(started.session)
    write_submission(out, grade, source=str(submission_path), digest=digest(submission_path),
                     executed=started.executed(), log=log)
    times["score and report"] = time.perf_counter() - mark
    mark = time.perf_counter()
    started.close()
    times["kernel shutdown and clean-up"] = time.perf_counter() - mark
    assert grade.auto_points == grade.auto_max, "the trivial submission should earn every point"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()

    from autograder.course.assignment import load_assignment
    from autograder.grading.intake import open_submission
    from autograder.grading.pipeline import grade_submission

    assignment = load_assignment(TRIVIAL)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = write_submissions(folder / "batch", args.submissions + 1)
        for name, seconds in stages(assignment, paths[0], folder / "staged").items():
            print(f"  {name:48s} {seconds:6.3f} s")

        per_submission = []
        for index, path in enumerate(paths[1:]):
            began = time.perf_counter()
            grade = grade_submission(assignment, open_submission(path), out=folder / "out" / str(index),
                                     sandbox="local")
            per_submission.append(time.perf_counter() - began)
            assert grade.auto_points == grade.auto_max

        cold = []
        for index in range(args.cold_runs):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "autograder", "grade", str(TRIVIAL), str(paths[0]),
                 "-o", str(folder / "cold" / str(index))],
                check=True, capture_output=True,
            )
            cold.append(time.perf_counter() - began)

    print(f"batch of {len(per_submission)} in one process: min {min(per_submission):.3f} s, "
          f"max {max(per_submission):.3f} s")
    print(f"cold command line (fresh process, one submission), median of {len(cold)}: "
          f"{statistics.median(cold):.3f} s")
    print(f"median seconds per submission: {statistics.median(per_submission):.3f}")


if __name__ == "__main__":
    main()
