"""How much of what a careful marker gives the courses' students the grader awards, on the
project's corpus of notebooks written as those students write (``tests/corpus``).

For each student: the automatic points a careful marker gives, the points the grader
awards on the items it grades, the items it refers to a marker (and their points), and the
items where it and the marker disagree (none, or the corpus test fails). The last line is
the share of the marker's automatic points the grader awarded, beside the share it left to
a marker. Synthetic stand-ins, the local sandbox.

    python bench/corpus.py [ASSIGNMENT ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autograder.course.assignment import load_assignment  # noqa: E402
from autograder.grading.intake import open_submission  # noqa: E402
from autograder.grading.pipeline import GradeOptions, grade_submission  # noqa: E402
from tests.corpus import cases, expected, submission  # noqa: E402 (the corpus lives with the tests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="only these assignments (default: every one in the corpus)")
    chosen = parser.parse_args().assignments
    totals = {"marker": 0.0, "awarded": 0.0, "referred": 0.0, "disagree": 0}
    print(f"{'assignment':18} {'student':16} {'marker':>7} {'awarded':>8} {'referred':>9} {'items':>6} "
          f"{'disagree':>9} {'seconds':>8}")
    for assignment_id, student in cases():
        if chosen and assignment_id not in chosen:
            continue
        want = expected(assignment_id)[student]
        began = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            opened = open_submission(submission(assignment_id, student, Path(folder) / student))
            try:
                grade = grade_submission(load_assignment(assignment_id), opened, options=GradeOptions(synthetic=True),
                                         sandbox="local")
            finally:
                opened.close()
        seconds = time.monotonic() - began
        marker = awarded = referred = 0.0
        disagree = count = 0
        for item in grade.items:
            if not item.status.automatic or item.id not in want["marker"]:
                continue
            given = float(want["marker"][item.id])
            marker += given
            if item.status == "referred":
                referred += item.max_points
                count += 1
            else:
                awarded += item.earned
                disagree += abs(item.earned - given) > 1e-6
        print(f"{assignment_id:18} {student:16} {marker:7g} {awarded:8g} {referred:9g} {count:6d} {disagree:9d} "
              f"{seconds:8.0f}")
        totals["marker"] += marker
        totals["awarded"] += awarded
        totals["referred"] += referred
        totals["disagree"] += disagree
    if totals["marker"]:
        print(f"awarded {totals['awarded']:g} of the {totals['marker']:g} automatic points a careful marker gives "
              f"({totals['awarded'] / totals['marker']:.0%}); {totals['referred']:g} points' items referred to a "
              f"marker; {totals['disagree']} items where the grader and the marker disagree")


if __name__ == "__main__":
    main()
