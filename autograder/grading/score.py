"""Turn check outcomes and measurements into points, per the rubric.

An automatic item earns its points when every check marked for it passes; a metric item
earns the fraction of the best band its measured value reaches. Manual items and items
of planned questions are listed with their points and "awaiting a marker". A check that
broke on the grader's side scores 0 with status ``error`` so a person looks at it.

Items of a bonus question are scored the same way (a manual one awaits a marker too) and
say they are bonus; the grade carries the policy's ``bonus_cap``, and ``Grade`` adds their
points outside the maximum, capped before any late penalty (see ``record``).
"""

from __future__ import annotations

from ..course.rubric import Item, Metric, Question
from .execute import NotebookRun
from .outcomes import CheckSession, Measurement, TestOutcome
from .record import CellProblem, CellStatus, Finding, Grade, ItemGrade, NotebookSummary, Status


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _against(reference: float | None) -> str:
    return f" (reference {_fmt(reference)})" if reference is not None else ""


def describe_metric(metric: Metric, value: float, reference: float | None) -> tuple[float, str]:
    """Fraction earned and a sentence saying why, e.g. 'accuracy 0.83: half marks (needs >= 0.89 for full)'."""
    fraction, band = metric.fraction_for(value, reference)
    sign = "≥" if metric.direction == "higher" else "≤"
    full = metric.effective_threshold(metric.bands[0], reference)
    lowest = metric.effective_threshold(metric.bands[-1], reference)
    unit = f" {metric.unit}" if metric.unit else ""
    head = f"{metric.name} {_fmt(value)}{unit}{_against(reference)}"
    if band is None:
        return 0.0, f"{head}: needs {sign} {_fmt(lowest)} for any credit"
    if fraction == 1.0:
        return 1.0, f"{head}: {sign} {_fmt(full)}, full marks"
    reached = metric.effective_threshold(band, reference)
    return fraction, f"{head}: {sign} {_fmt(reached)} earns {fraction:.0%}; full marks need {sign} {_fmt(full)}"


def _measured(measured: list[Measurement]) -> str:
    """What a check measured for an item scored without a metric, e.g. 'accuracy, a = 0.05 0.991'."""
    return "; ".join(f"{m.name} {_fmt(m.value)}{_against(m.reference)}" + (f" ({m.note})" if m.note else "")
                     for m in measured)


def _score_auto(item: Item, outcomes: list[TestOutcome], measured: list[Measurement]) -> ItemGrade:
    grade = _blank(item, "", Status.FAILED)
    grade.checks = [{"check": o.nodeid, "status": o.status, "reason": o.reason} for o in outcomes]
    grade.bound = list(dict.fromkeys(sentence for o in outcomes for sentence in o.bound))
    grade.measurements = [vars(m).copy() for m in measured]
    grade.points = 0.0
    errors = [o for o in outcomes if o.status == Status.ERROR]
    failures = [o for o in outcomes if o.status == Status.FAILED]
    referred = [o for o in outcomes if o.status == Status.REFERRED]
    if not outcomes:
        grade.status, grade.reason, grade.points = Status.ERROR, "no check ran for this item", None
    elif errors:  # withheld for a marker's look: the grader's failure is never the student's 0
        grade.status, grade.reason, grade.detail = Status.ERROR, errors[0].reason, errors[0].detail
        grade.points = None
    elif failures:
        grade.reason = "; ".join(dict.fromkeys(o.reason for o in failures))
        grade.detail = next((o.detail for o in failures if o.detail), [])
    elif referred:  # the grader could not find what to grade: a marker's look, not a 0
        grade.status, grade.reason, grade.points = Status.REFERRED, referred[0].reason, None
    elif item.metric is None:
        grade.status, grade.points, grade.reason = Status.PASSED, item.points, _measured(measured)
    else:
        values = [m for m in measured if m.name == item.metric.name]
        if not values:
            grade.status, grade.reason = Status.ERROR, f"the check recorded no {item.metric.name}"
            grade.points = None
            return grade
        fraction, grade.reason = describe_metric(item.metric, values[-1].value, values[-1].reference)
        if values[-1].note:
            grade.reason += f" ({values[-1].note})"
        grade.points = round(item.points * fraction, 6)
        grade.status = Status.PASSED if fraction == 1.0 else Status.PARTIAL if fraction > 0 else Status.FAILED
    return grade


def _blank(item: Item, question_id: str, status: Status, reason: str = "") -> ItemGrade:
    return ItemGrade(
        id=item.id,
        question=question_id,
        title=item.title,
        kind=item.kind,
        visibility=item.visibility,
        max_points=item.points,
        points=None,
        status=status,
        reason=reason,
    )


def _score_item(
    question: Question,
    item: Item,
    outcomes: list[TestOutcome],
    measured: list[Measurement],
    selected: set[str],
    problem: str,
    session: CheckSession,
) -> ItemGrade:
    if question.status == "planned":
        return _blank(item, question.id, Status.PLANNED, "no automatic check yet: awaiting a marker")
    if item.kind == "manual":
        return _blank(item, question.id, Status.MANUAL, "awaiting a marker")
    if item.id not in selected:
        if problem:
            blank = _blank(item, question.id, Status.FAILED, problem)
            blank.points = 0.0
            return blank
        notebook = session.notebook_of(item.id)
        if session.only_notebooks and notebook not in session.only_notebooks:
            return _blank(item, question.id, Status.NOT_CHECKED, f"not part of this check ({notebook} was not given)")
        if session.only_questions and question.id not in session.only_questions:
            return _blank(item, question.id, Status.NOT_CHECKED,
                          f"not part of this check (question {question.id} was not selected)")
        return _blank(item, question.id, Status.NOT_CHECKED, "checked by markers only")
    grade = _score_auto(item, outcomes, measured)
    grade.question = question.id
    if grade.bound:  # what was graded under the template's names comes first in the reason
        grade.reason = "; ".join(part for part in ("; ".join(grade.bound), grade.reason) if part)
    return grade


def score(session: CheckSession, *, problem: str = "") -> Grade:
    """The grade of one submission. ``problem`` zeroes every automatic item with that reason."""
    rubric = session.assignment.rubric
    by_item: dict[str, list[TestOutcome]] = {}
    for outcome in session.outcomes:
        by_item.setdefault(outcome.item_id, []).append(outcome)
    items = []
    for q, i in rubric.items():
        grade = _score_item(
            q, i, by_item.get(i.id, []), session.measurements.get(i.id, []), session.selected_items, problem, session
        )
        _refer_what_could_not_run(grade, i, next((run for run in session.runs
                                                  if run.name == session.notebook_of(i.id)), None))
        _refer_what_the_stand_in_cannot_prove(grade, i, q.id, session)
        grade.bonus = q.bonus
        items.append(grade)
    return Grade(
        assignment=rubric.assignment,
        submission=session.submission,
        items=items,
        notebooks=[notebook_summary(run) for run in session.runs],
        findings=[*session.findings, *binding_findings(session)],
        public_only=session.public_only,
        problem=problem,
        bonus_cap=rubric.policy.bonus_cap,
    )


def _refer_what_the_stand_in_cannot_prove(grade: ItemGrade, item: Item, question: str,
                                          session: CheckSession) -> None:
    """A measurement below its bands on the synthetic stand-in, for an item whose thresholds
    the stand-in's short training cannot prove for every network the handout allows (the
    rubric's ``synthetic.unproven``), is a marker's: the budget was the grader's choice, not
    the student's flaw. A check's own failure (no such network, a wrong shape) stays, and so
    does a run given other sizes than those the figures were measured at (none trained, say)."""
    synthetic = session.assignment.rubric.synthetic
    why = synthetic.unproven.get(item.id)
    if why is None or item.metric is None or not synthetic.at_its_budget(session.data, session.parameters, question):
        return
    if grade.status not in (Status.FAILED, Status.PARTIAL) or any(c["status"] != Status.PASSED for c in grade.checks):
        return
    grade.status, grade.points = Status.REFERRED, None
    grade.reason = f"{grade.reason}; {synthetic.too_short(session.parameters, why)}"


def _refer_what_could_not_run(grade: ItemGrade, item: Item, run: NotebookRun | None) -> None:
    """An item that failed in a notebook the grader could not run as its student did is a
    marker's: the course gave its students GPUs this grading lacked, or (for a measurement
    of a trained model) the notebook reloads a file, a checkpoint of its training, that the
    submission does not hold. Its outputs saved in the notebook and the report are what a
    person can judge it by."""
    if run is None or grade.status not in (Status.FAILED, Status.REFERRED):
        return
    if run.needs_gpu:
        why = f"{run.needs_gpu}: grade this notebook where a GPU is (--gpus), or mark the item by hand"
    elif run.lacks_files and item.metric is not None:
        why = (f"{'; '.join(run.lacks_files)}: the grader could not run the notebook as its student did, so a "
               "marker judges the item from its saved outputs and the report")
    else:
        return
    grade.status, grade.points = Status.REFERRED, None
    grade.reason = f"{why}; as it ran here: {grade.reason}"


def binding_findings(session: CheckSession) -> list[Finding]:
    """What the grader graded under the template's names, once per notebook and name."""
    return [Finding("info", notebook, binding.sentence()) for notebook, channel in session.channels.items()
            if channel.binder is not None for binding in channel.binder.bound.values()]


def notebook_summary(run: NotebookRun) -> NotebookSummary:
    cells = [
        CellProblem(
            cell=cell.number,
            status=cell.status,
            seconds=round(cell.seconds, 3),
            error=f"{cell.ename}: {cell.evalue}".strip(": ") if cell.ename else "",
            note=cell.note,
            traceback_tail=cell.traceback,
        )
        for cell in run.cells
        if cell.status is not CellStatus.OK
    ]
    return NotebookSummary(
        notebook=run.name,
        seconds=round(run.seconds, 3),
        code_cells=len(run.cells),
        problem=run.problem,
        truncated_output_cells=run.truncated_cells,
        cells_not_ok=cells,
        causes=list(run.causes),
    )
