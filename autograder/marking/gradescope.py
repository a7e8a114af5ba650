"""Gradescope: the autograder zip, and grading inside Gradescope's container.

The zip holds ``setup.sh`` and ``run_autograder`` at its root, the grader's source, the
whole rubric folder (hidden checks included: the zip stays on Gradescope's side) and,
when given, the course's data. Gradescope unpacks it into ``/autograder/source``, runs
``setup.sh`` once when it builds the image, and ``run_autograder`` (as root) for each
submission: the submission's notebooks run as an unprivileged user behind the local
sandbox, with the source, the results folder and the data's labels hidden from them, and
``/autograder/results/results.json`` is written in Gradescope's format.

Only automatic items are scored here, so the maximum is theirs (``Grade.auto_max``): the
late penalty is a fraction of it, and with ``bonus_cap: total`` the score with bonus
points never exceeds it. A bonus item is a test worth its own points, named as bonus.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dateutil import parser as dateparser

from ..atomic import atomic_write
from ..course.assignment import Assignment
from ..course.bundle import (
    ASSIGNMENT_DIR,
    GRADER_DIR,
    copy_assignment,
    copy_grader,
    zip_folder,
)
from ..course.rubric import Rubric
from ..data.context import synthetic_source
from ..errors import UsageError
from ..grading.pipeline import GradeOptions, grade_submission
from ..grading.record import Grade, ItemGrade, Late, Status
from ..sandboxes.sandbox import LocalSandbox

VENV = "/opt/autograder-venv"
DATA_DIR = "data"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {{
    echo "this base image's Python is $(python3 -V 2>&1), older than 3.10: choose Ubuntu 22.04 or later" >&2
    exit 1
}}
python3 -m venv {venv}
# Gradescope has no GPU: PyTorch's CPU build (about 1 GB instead of several) where its index
# can be reached; otherwise the package index's default build comes with the grader
{venv}/bin/pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu \
    || echo "PyTorch's CPU build could not be fetched; the package index's default is installed instead"
{venv}/bin/pip install -q /autograder/source/{grader}
# students' code runs as another user: it must be able to run this Python
chmod -R o+rX {venv}
real="$(readlink -f {venv}/bin/python)"
dir="$(dirname "$real")"
while [ "$dir" != / ]; do chmod o+x "$dir"; dir="$(dirname "$dir")"; done
# synthetic stand-ins are made now, so that nothing is fetched or generated per submission
AUTOGRADER_CACHE=/autograder/cache {venv}/bin/autograder gradescope-run /autograder/source/{assignment} \\
    --root /autograder {data} --prepare
# Gradescope's container refuses the namespaces of a root of its own, so permissions hide the
# grader's side from students' code (another user): the source (hidden checks, expected
# values, the course's data with its labels) and the cache; run_autograder closes the results.
mkdir -p /autograder/cache && chmod -R go-rwx /autograder/source /autograder/cache
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this, as root, for each submission.
ROOT="${{AUTOGRADER_GS_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_GS_PYTHON:-{venv}/bin/python}}"
export AUTOGRADER_CACHE="${{AUTOGRADER_CACHE:-$ROOT/cache}}"
exec "$PYTHON" -m autograder gradescope-run "$ROOT/source/{assignment}" --root "$ROOT" {data}
"""


def build_autograder(assignment: Assignment, path: Path, *, data_dir: Path | None = None) -> Path:
    """The autograder zip to upload to Gradescope. Without ``data_dir``, assignments that
    read datasets are graded on synthetic stand-ins (for trying Gradescope out)."""
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"--data {data_dir}: no such folder")
    data_flag = f'--data "$ROOT/source/{DATA_DIR}"' if data_dir is not None else "--synthetic"
    setup_flag = f"--data /autograder/source/{DATA_DIR}" if data_dir is not None else "--synthetic"
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as scratch:
        root = Path(scratch)
        copy_grader(root / GRADER_DIR)
        copy_assignment(assignment, root / ASSIGNMENT_DIR, public=False)
        if data_dir is not None:
            shutil.copytree(data_dir, root / DATA_DIR, symlinks=False)
        (root / "setup.sh").write_text(SETUP.format(venv=VENV, grader=GRADER_DIR, assignment=ASSIGNMENT_DIR,
                                                    data=setup_flag), encoding="utf-8")
        (root / "run_autograder").write_text(RUN.format(venv=VENV, assignment=ASSIGNMENT_DIR, data=data_flag),
                                             encoding="utf-8")
        return zip_folder(root, path, executable=("setup.sh", "run_autograder"))


# -- inside Gradescope


def _moment(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return dateparser.isoparse(str(text))
    except (ValueError, OverflowError):
        return None


def deadline(metadata: dict[str, Any], rubric: Rubric) -> tuple[datetime | None, datetime | None]:
    """(submitted, due) from Gradescope's submission metadata; a user's own due date (an
    extension) wins over the assignment's, which wins over the rubric's."""
    submitted = _moment(metadata.get("created_at"))
    dues = [_moment((user.get("assignment") or {}).get("due_date")) for user in metadata.get("users") or []]
    due = max((d for d in dues if d is not None), default=None)
    due = due or _moment((metadata.get("assignment") or {}).get("due_date")) or rubric.policy.due
    return submitted, due


def _test(item: ItemGrade, rubric: Rubric) -> dict[str, Any]:
    lines = [item.reason or str(item.status)]
    if item.status is Status.ERROR:
        lines.insert(0, "The grader failed on this item, not your code: its points wait for your instructor's look.")
    if item.status is Status.REFERRED:
        lines.insert(0, "The grader could not tell which part of your notebook this item is about: your "
                        "instructor will mark it.")
    if item.detail:
        lines += ["", "```", *item.detail[-20:], "```"]
    _, rubric_item = rubric.item(item.id)
    metric = rubric_item.metric
    if metric is not None:
        measured = item.measured(metric.name)
        lines += ["", metric.needs(measured.get("reference") if measured else None).capitalize() + "."]
    return _test_entry(item.id, item.title, item.question, item.visibility, score=item.points or 0.0,
                       max_score=item.max_points, passed=item.status is Status.PASSED, output="\n".join(lines),
                       bonus=item.bonus)


BONUS_NOTE = "Bonus: these points are added to the score, outside its maximum."


def _test_entry(item_id: str, title: str, question: str, visibility: str, *, score: float, max_score: float,
                passed: bool, output: str, bonus: bool = False) -> dict[str, Any]:
    """One Gradescope test for a rubric item: public ones visible, hidden ones after publishing;
    a bonus item says so in its name, its output and its tags."""
    return {
        "name": f"{item_id} {title}" + (" (bonus)" if bonus else ""),
        "number": item_id,
        "score": score,
        "max_score": max_score,
        "status": "passed" if passed else "failed",
        "output": f"{BONUS_NOTE}\n\n{output}" if bonus else output,
        "output_format": "md",
        "visibility": "visible" if visibility == "public" else "after_published",
        "tags": [f"question {question}", *(["bonus"] if bonus else [])],
    }


def _bonus_line(grade: Grade) -> str:
    """How the bonus items count on Gradescope, where the maximum is the automatic items'; as
    for the public items, the hidden ones' share is not in it."""
    public = [item for item in grade.bonus if item.status.automatic and not item.status.awaiting
              and item.visibility == "public"]
    earned, maximum = sum(i.earned for i in public), sum(i.max_points for i in public)
    rule = ("the score with them never exceeds the maximum" if grade.bonus_cap == "total"
            else "they may take the score above the maximum")
    return f"Public bonus items: {earned:g} / {maximum:g}. Bonus points are added to the score; {rule}."


def results(grade: Grade, rubric: Rubric, *, late: Late, seconds: float) -> dict[str, Any]:
    """Gradescope's results.json for a grade: one test per automatic item."""
    auto = grade.automatic
    public = [item for item in auto if item.visibility == "public" and not item.status.awaiting and not item.bonus]
    summary = [f"Public items: {sum(i.earned for i in public):g} / {sum(i.max_points for i in public):g}."]
    if any(item.bonus for item in auto):
        summary.append(_bonus_line(grade))
    if any(item.visibility == "hidden" for item in grade.items):
        summary.append("Hidden items are graded too; their results appear when grades are published.")
    if grade.problem:
        summary.append(f"**This submission could not be graded:** {grade.problem}")
    if late.note:
        summary.append(f"**Late:** {late.note}.")
    for finding in grade.findings:
        summary.append(f"- {finding.level}: `{finding.file}`: {finding.message}")
    for notebook in grade.notebooks:
        if notebook.problem:
            summary.append(f"- `{notebook.notebook}`: {notebook.problem}")
    by_hand = [i for i in grade.awaiting if i.status not in (Status.ERROR, Status.REFERRED)]
    if by_hand:
        summary.append("Marked by hand: " + ", ".join(f"{i.id} ({i.max_points:g}{' bonus' if i.bonus else ''})"
                                                      for i in by_hand) + ".")
    referred = [i for i in grade.awaiting if i.status is Status.REFERRED]
    if referred:
        summary.append("Found no part of the notebook to grade for " + ", ".join(f"{i.id} ({i.max_points:g})"
                                                                                 for i in referred)
                       + ": your instructor will mark them.")
    failed = [i for i in grade.awaiting if i.status is Status.ERROR]
    if failed:
        summary.append("The grader failed on " + ", ".join(f"{i.id} ({i.max_points:g})" for i in failed)
                       + ": your instructor will look at them.")
    leaderboard = []
    for item in auto:
        metric = rubric.item(item.id)[1].metric
        measured = item.measured(metric.name) if metric is not None else None
        if metric is not None and measured is not None:
            leaderboard.append({"name": f"{item.id} {metric.name}", "value": round(measured["value"], 6),
                                "order": "desc" if metric.direction == "higher" else "asc"})
    return {
        "score": grade.final(late, automatic_only=True),
        "execution_time": round(seconds, 1),
        "output": "\n\n".join(summary),
        "output_format": "md",
        # With hidden items the total would tell their outcome: the result as a whole (its
        # score) waits for publishing, while each public test keeps its own "visible".
        "visibility": "after_published" if any(i.visibility == "hidden" for i in auto) else "visible",
        "stdout_visibility": "hidden",
        "tests": [_test(item, rubric) for item in auto],
        "leaderboard": leaderboard,
    }


def run(assignment: Assignment, root: Path, *, data_dir: Path | None, synthetic: bool) -> dict[str, Any]:
    """Grade ``root/submission`` and write ``root/results/results.json``."""
    began = time.monotonic()
    rubric = assignment.rubric
    out = root / "results"
    out.mkdir(parents=True, exist_ok=True)
    try:
        metadata = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = {}
    platform = rubric.gradescope
    # Written first: if the platform stops the run (its timeout, its memory), a valid
    # results.json says so instead of Gradescope's "autograder failed".
    atomic_write(out / "results.json", json.dumps(provisional(rubric), indent=2))
    budget = max(1.0, platform.timeout_s - platform.margin_s - (time.monotonic() - began))
    options = GradeOptions(data_dir=data_dir, synthetic=synthetic, hidden=(root / "source", out, root / "cache"),
                           budget_s=budget, memory_mb=min(rubric.limits.memory_mb, platform.kernel_memory_mb))
    grade = grade_submission(assignment, root / "submission", options=options, sandbox=LocalSandbox(),
                             out=out / "grade")
    submitted, due = deadline(metadata, rubric)
    late = grade.late(rubric.policy, submitted=submitted, due=due, automatic_only=True)
    document = results(grade, rubric, late=late, seconds=time.monotonic() - began)
    atomic_write(out / "results.json", json.dumps(document, indent=2))
    return document


def provisional(rubric: Rubric) -> dict[str, Any]:
    """results.json before anything is graded: every automatic item "not graded", for a
    run the platform stops before the grader writes the real one."""
    note = ("not graded: the run was stopped (Gradescope's time or memory limit) before this item was graded; "
            "your instructor can regrade it")
    tests = [_test_entry(item.id, item.title, question.id, item.visibility, score=0.0, max_score=item.points,
                         passed=False, output=note, bonus=question.bonus)
             for question, item in rubric.items() if item.kind == "auto" and question.status == "ready"]
    return {"score": 0.0, "output": f"**Not graded:** {note}.", "output_format": "md", "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def prepare(assignment: Assignment, *, synthetic: bool) -> None:
    """At image build time: make the synthetic stand-ins, so no submission waits for them."""
    names = assignment.rubric.datasets()
    if synthetic and names:
        assignment.declare_datasets()
        synthetic_source(names, scale=assignment.rubric.synthetic.scale)
