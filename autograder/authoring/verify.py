"""Prove an assignment's thresholds: grade its reference notebooks at full size.

Course staff run this on real data (and a GPU) before a semester: every metric is
reported against its bands, with the time each notebook took, and where the data and
the pretrained weights came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..course.assignment import Assignment
from ..data import weights
from ..grading.pipeline import GradeOptions, grade_submission, open_run
from ..grading.record import Grade, Status
from ..sandboxes.sandbox import Sandbox


@dataclass
class Verification:
    grade: Grade
    seconds: float
    provenance: list[str] = field(default_factory=list)

    @property
    def failed_on(self) -> list[str]:
        """The automatic items the grader failed on (a check that raised): not proven."""
        return [item.id for item in self.grade.automatic if item.status is Status.ERROR]

    @property
    def complete(self) -> bool:
        """Every automatic point earned, bonus items' included, none of them withheld because
        the grader failed."""
        earned = all(item.points is not None and not item.missed for item in self.grade.automatic)
        return earned and self.grade.auto_points == self.grade.auto_max and not self.grade.problem \
            and not self.failed_on

    @property
    def bonus(self) -> tuple[float, float]:
        """The points the reference earns on automatic bonus items, and theirs in all."""
        items = [item for item in self.grade.automatic if item.bonus]
        return round(sum(i.earned for i in items), 6), round(sum(i.max_points for i in items), 6)


def provenance(assignment: Assignment, options: GradeOptions, synthetic: bool, source: str) -> list[str]:
    lines = [f"data: {'synthetic stand-ins' if synthetic else 'the course data'} in {source}"]
    if "weights" in assignment.rubric.datasets():
        if synthetic:
            lines.append("pretrained weights: synthetic, random initialisations of the right architectures "
                         "(metrics show the pipeline works, not what real pretrained weights reach)")
        else:
            lines.append(f"pretrained weights: the files in {source}/{weights.FOLDER}/")
    sizes = "the rubric's small synthetic sizes" if not options.full_size else "each notebook's own (full size)"
    lines.append(f"epochs and sizes: {sizes}")
    return lines


def verify(assignment: Assignment, *, options: GradeOptions, sandbox: Sandbox | str = "auto") -> Verification:
    """Grade the reference solutions with ``options`` in ``sandbox`` (a backend or its
    name, ``auto`` as on the command line); the reference should earn every point."""
    began = time.monotonic()
    with open_run(assignment, assignment.reference_dir, options=options) as run:
        grade = grade_submission(assignment, run.submission, options=options, sandbox=sandbox, data=run.data)
        data = run.data
        lines = provenance(assignment, options, bool(data and data.synthetic), str(data.source) if data else "-")
    return Verification(grade, time.monotonic() - began, lines)
