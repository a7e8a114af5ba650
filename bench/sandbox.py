"""Per-submission overhead of each sandbox on a trivial notebook (the toy assignment).

Grades the same trivial submission repeatedly in each backend, in one process, and
prints the median seconds per submission: the plain subprocess (no walls, the floor),
the local sandbox (jail: namespaces, limits, its own user when root), and Docker (a
container per kernel; skipped, with the reason, when no engine or image is here).
Targets: local at most 1.2 times the plain subprocess, Docker at most 3 s.

    python bench/sandbox.py [--submissions 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"
sys.path.insert(0, str(ROOT))
from tests.assignments.trivial.solution import write_solution  # noqa: E402 (the toy assignment's solution)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
    args = parser.parse_args()

    from autograder.course.assignment import load_assignment
    from autograder.errors import GraderError
    from autograder.grading.intake import open_submission
    from autograder.grading.pipeline import GradeOptions, grade_submission
    from autograder.sandboxes.backends import make_sandbox
    from autograder.sandboxes.sandbox import LocalSandbox

    assignment = load_assignment(TRIVIAL)
    backends = {"plain subprocess (no walls)": LocalSandbox(isolate=False), "local": LocalSandbox()}
    try:
        docker = make_sandbox("docker")
        docker.check()
        backends["docker"] = docker
    except GraderError as error:
        print(f"docker: skipped ({error})")
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path = write_solution(folder / "student" / "trivial.ipynb").parent
        for name, sandbox in backends.items():
            sandbox.check()
            seconds = []
            for index in range(args.submissions + 1):  # the first run warms caches and is not counted
                submission = open_submission(path)
                began = time.perf_counter()
                grade = grade_submission(assignment, submission, sandbox=sandbox, options=GradeOptions(gpus="none"),
                                         out=folder / name / str(index))
                elapsed = time.perf_counter() - began
                submission.close()
                if grade.auto_points != grade.auto_max:
                    print(f"  note: {name}: submission {index} lost points ({grade.auto_points:g} of "
                          f"{grade.auto_max:g}); its time is counted all the same")
                if index:
                    seconds.append(elapsed)
            medians[name] = statistics.median(seconds)
            walls = sandbox.walls if isinstance(sandbox, LocalSandbox) else "container"
            print(f"{name} ({walls}): median {medians[name]:.3f} s per submission "
                  f"(min {min(seconds):.3f}, max {max(seconds):.3f}, {len(seconds)} submissions)")
    floor = medians["plain subprocess (no walls)"]
    for name, median in medians.items():
        print(f"{name}: {median / floor:.2f}x the plain subprocess")


if __name__ == "__main__":
    main()
