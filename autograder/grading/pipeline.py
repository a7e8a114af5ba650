"""The grading pipeline. The stage order lives here and nowhere else:

    intake -> preflight -> execute -> check -> score -> report

``grade_submission`` grades one submission; ``batch.grade_batch`` grades many, as
independent jobs.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..course.assignment import Assignment
from ..course.rubric import Limits, Rubric
from ..data import SCALES
from ..data.context import DataContext, cache_root, open_data
from ..errors import AssignmentError, GraderError, KernelStartError, UsageError
from ..sandboxes.backends import as_sandbox
from ..sandboxes.resources import MIN_MEMORY_MB, Resources, gpu_problem
from ..sandboxes.sandbox import Place, Sandbox, private_dir
from ..sandboxes.scratch import make_temp
from . import kernel_setup
from .binding import Binder, follows_template, rebound_names
from .causes import local_modules, module_available, root_causes
from .channel import KernelChannel
from .check import run_checks
from .execute import LiveNotebook, execute_notebook
from .intake import Candidate, Submission, open_submission
from .outcomes import CheckSession
from .preflight import notebooks_submitted, preflight
from .record import Grade
from .report import write_submission
from .score import score


@dataclass(frozen=True)
class GradeOptions:
    """How to grade; ``None`` limits mean the rubric's own.

    Checked when made: a bad value is a ``UsageError`` naming it as ``names`` says the
    caller calls it (the command line gives its flags), else as this class's field.
    """

    cell_timeout_s: float | None = None
    total_timeout_s: float | None = None
    probe_timeout_s: float | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    public_only: bool = False
    notebooks: tuple[str, ...] = ()  # grade only these of the rubric's notebooks; empty: all
    questions: tuple[str, ...] = ()  # check only these questions' automatic items (the notebooks still run); empty: all
    data_dir: Path | None = None  # the course's data folder, for assignments that read datasets
    synthetic: bool = False  # without data_dir: grade on synthetic stand-ins
    synthetic_scale: str | None = None  # None: the rubric's
    full_size: bool = False  # on synthetic data too, keep the notebooks' own epochs and sizes
    memory_mb: int | None = None
    scratch_mb: int | None = None
    kernel_start_timeout_s: float | None = None
    gpus: str | None = None  # auto | all | none | indices
    hidden: tuple[Path, ...] = ()  # more grader folders kernels must not read (a batch's input and results)
    budget_s: float | None = None  # all notebooks of a submission within this (a platform's limit, as Gradescope's)
    bindings: Mapping[str, str] = field(default_factory=dict)  # a marker's: template name -> the student's name
    names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # field -> the caller's name

    def __post_init__(self) -> None:
        for name in ("cell_timeout_s", "total_timeout_s", "probe_timeout_s", "kernel_start_timeout_s", "budget_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                self._refuse(name, value, "must be a positive number of seconds")
        if self.memory_mb is not None and self.memory_mb < MIN_MEMORY_MB:
            self._refuse("memory_mb", self.memory_mb, f"a kernel needs at least {MIN_MEMORY_MB} MB")
        if self.scratch_mb is not None and self.scratch_mb <= 0:
            self._refuse("scratch_mb", self.scratch_mb, "must be a positive number of megabytes")
        if self.gpus is not None and (problem := gpu_problem(self.gpus)):
            self._refuse("gpus", self.gpus, problem)
        if self.synthetic_scale is not None and self.synthetic_scale not in SCALES:
            self._refuse("synthetic_scale", self.synthetic_scale, f"expected one of {', '.join(SCALES)}")
        for key in self.parameters:
            if not (isinstance(key, str) and key.isidentifier()):
                self._refuse("parameters", key, "a parameters cell sets Python names")
        if isinstance(self.notebooks, str):
            self._refuse("notebooks", self.notebooks, "expected a tuple of notebook names")
        if isinstance(self.questions, str):
            self._refuse("questions", self.questions, "expected a tuple of question ids")

    def _refuse(self, name: str, value: object, problem: str) -> None:
        raise UsageError(f"{self.names.get(name, f'GradeOptions.{name}')} {value!r}: {problem}")

    def open_data(self, rubric: Rubric, names: list[str] | None = None) -> DataContext | None:
        """The datasets ``names`` (default: those the graded notebooks read); None when
        there are none."""
        names = rubric.datasets(self.notebooks) if names is None else names
        return open_data(names, data_dir=self.data_dir, synthetic=self.synthetic,
                         scale=self.synthetic_scale or rubric.synthetic.scale)

    def notebook_parameters(self, rubric: Rubric, data: DataContext | None) -> dict[str, Any]:
        """The rubric's values, the synthetic sizes when on synthetic data, then this run's."""
        small = data is not None and data.synthetic and not self.full_size
        return {**rubric.parameters, **(rubric.synthetic.parameters if small else {}), **self.parameters}

    def limits(self, rubric_limits: Limits) -> Limits:
        changes = {
            "cell_timeout_s": self.cell_timeout_s,
            "total_timeout_s": self.total_timeout_s,
            "probe_timeout_s": self.probe_timeout_s,
            "memory_mb": self.memory_mb,
            "scratch_mb": self.scratch_mb,
            "kernel_start_timeout_s": self.kernel_start_timeout_s,
            "gpus": self.gpus,
        }
        return rubric_limits.model_copy(update={k: v for k, v in changes.items() if v is not None})


def datasets_read(rubric: Rubric, notebooks: list[str]) -> list[str]:
    """The datasets the rubric's ``notebooks`` read (none for no notebooks)."""
    return rubric.datasets(notebooks) if notebooks else []


def resources(limits: Limits) -> Resources:
    """What one kernel may use, from the run's limits."""
    budget = limits.total_timeout_s + limits.probe_timeout_s * 10  # running, then being probed
    return Resources(
        memory_mb=limits.memory_mb,
        cpus=limits.cpus,
        processes=limits.processes,
        scratch_mb=limits.scratch_mb,
        gpus=limits.gpus,
        cpu_seconds=round(budget * (limits.cpus or os.cpu_count() or 1)),
    )


def _hidden(assignment: Assignment, data: DataContext | None, options: GradeOptions) -> list[Path]:
    """Grader folders no kernel may read: checks, references, datasets with their labels, results."""
    folders = [assignment.folder, assignment.reference_dir, cache_root(), *options.hidden]
    if data is not None:
        folders.append(data.source)
    return [folder.resolve() for folder in folders]


@dataclass
class Started:
    """A submission whose notebooks have run, with their kernels still alive."""

    session: CheckSession
    sandbox: Sandbox
    lives: dict[str, LiveNotebook] = field(default_factory=dict)
    scratch: list[Path] = field(default_factory=list)
    enforced: dict[str, Any] = field(default_factory=dict)

    def executed(self) -> dict[str, NotebookNode]:
        return {name: live.nb for name, live in self.lives.items()}

    def close(self) -> None:
        for live in self.lives.values():
            try:
                live.shutdown()
            except Exception:  # a kernel that is already gone needs no shutting down
                pass
        try:
            self.sandbox.release()
        finally:
            for folder in self.scratch:
                shutil.rmtree(folder, ignore_errors=True)
        self.scratch.clear()


def _stage_workdir(
    assignment: Assignment, submission: Submission, sources: dict[str, Path], datasets: DataContext | None
) -> tuple[Path, dict[str, Path]]:
    """Copy the submission into a fresh folder; stage the public data beside each notebook
    and link the datasets' view into it."""
    workdir = make_temp(f"submission-{submission.id[:40]}-")
    root = submission.root
    assert root is not None
    copy = workdir / "submission"
    if root.is_file():
        copy.mkdir()
        shutil.copy2(root, copy / root.name)
        cwd_of = {name: copy for name in sources}
    else:
        shutil.copytree(root, copy, symlinks=True, ignore_dangling_symlinks=True)
        cwd_of = {name: copy / path.parent.relative_to(root) for name, path in sources.items()}
    public = assignment.public_data_dir
    spec = assignment.rubric.data
    if public is not None and spec is not None:
        if not public.is_dir():
            raise AssignmentError(f"{assignment.id}: public data folder {public} does not exist")
        for cwd in set(cwd_of.values()):
            shutil.copytree(public, cwd / spec.stage_as, dirs_exist_ok=True)
    if datasets is not None:
        places = assignment.rubric.datasets_at or [spec.stage_as if spec else "data"]
        for cwd in set(cwd_of.values()):
            for place in places:
                (cwd / place).mkdir(parents=True, exist_ok=True)
                for entry in datasets.entries():  # the grader's copy wins over a submitted one
                    link = cwd / place / entry.name
                    if link.exists() or link.is_symlink():
                        shutil.rmtree(link) if link.is_dir() and not link.is_symlink() else link.unlink()
                    link.symlink_to(entry)
    return workdir, cwd_of


def start(
    assignment: Assignment,
    submission: Submission,
    *,
    options: GradeOptions,
    sandbox: Sandbox | str = "auto",
    data: DataContext | None = None,
) -> Started:
    """Stages intake → preflight → execute: every expected notebook run, kernels kept alive.

    ``data`` is the run's datasets (see ``GradeOptions.open_data``); required when the
    rubric lists datasets.
    """
    sandbox = as_sandbox(sandbox)
    rubric = assignment.rubric
    limits = options.limits(rubric.limits)
    parameters = options.notebook_parameters(rubric, data)
    checked = preflight(rubric, submission, only=options.notebooks, parameters=parameters)
    if data is None and (needed := datasets_read(rubric, list(checked.notebooks))):
        raise GraderError(f"{', '.join(checked.notebooks)} of {submission.id} read {', '.join(needed)}, "
                          "but no datasets were opened for this run")
    session = CheckSession(
        assignment,
        submission=submission.id,
        unavailable=dict(checked.unavailable),
        public_only=options.public_only,
        only_notebooks=set(options.notebooks),
        only_questions=set(options.questions),
        findings=list(checked.findings),
        data=data,
        parameters=parameters,
    )
    started = Started(session, sandbox)
    if not checked.notebooks:
        return started
    try:
        workdir, cwd_of = _stage_workdir(assignment, submission, checked.sources, data)
        started.scratch.append(workdir)
        readonly = [data.view] if data is not None else []
        sandbox.prepare(workdir, readonly)
        hidden = _hidden(assignment, data, options)
        deadline = time.monotonic() + options.budget_s if options.budget_s else None
        for name, nb in checked.notebooks.items():
            total = limits.total_timeout_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < 1:
                    session.unavailable[name] = f"{name} was not run: {BUDGET_NOTE.format(budget=options.budget_s)}"
                    continue
                total = min(total, left)
            place = Place(workdir=workdir, cwd=cwd_of[name], private=private_dir(), readonly=readonly,
                          hidden=hidden, resources=resources(limits))
            started.scratch.append(place.private)
            live = execute_notebook(
                nb,
                name=name,
                manager=sandbox.kernel_manager(place),
                cwd=place.cwd,
                env=sandbox.kernel_env(place),
                cell_timeout=min(limits.cell_timeout_s, total),
                total_timeout=total,
                max_output_bytes=limits.max_output_bytes,
                parameters=parameters,
                start_timeout=limits.kernel_start_timeout_s,
                total_reason=BUDGET_NOTE.format(budget=options.budget_s) if total < limits.total_timeout_s else "",
                prelude=kernel_setup.install_source(data.downloads() if data is not None else {}),
            )
            if live.run.start_failed:
                _blame_start(name, live, place.log_tail())
            found = root_causes(live.run, module_available(local_modules(place.cwd)))
            live.run.causes = [cause.sentence() for cause in found]
            why = sandbox.explain(place) if live.run.problem else ""
            if why:
                live.run.problem += f" ({why})"
            started.lives[name] = live
            started.enforced[name] = sandbox.enforced(place)
            session.runs.append(live.run)
            channel = KernelChannel(live, timeout=limits.probe_timeout_s)
            specs = rubric.names_for(name)
            live.run.answers = frozenset(specs)  # a missing name's hint never offers another item's answer
            sources = [cell.source for cell in live.run.cells]
            follows = follows_template(sources, specs, template_cells(assignment, name))
            channel.binder = Binder(name, specs, overrides=dict(options.bindings), follows=follows,
                                    reserved=frozenset(parameters), rebound=rebound_names(sources))
            session.channels[name] = channel
    except BaseException:
        started.close()
        raise
    return started


def template_cells(assignment: Assignment, notebook: str) -> list[str]:
    """The code cells of the assignment's student template of ``notebook`` (none without one)."""
    path = assignment.templates_dir / notebook
    try:
        return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    except (OSError, ValueError):
        return []


#: Why a notebook stopped, or never ran, when the run's budget (``GradeOptions.budget_s``) ran out.
BUDGET_NOTE = "not graded: time budget (this run's {budget:g} s, the platform's limit, ran out)"


def _blame_start(name: str, live: LiveNotebook, said: str) -> None:
    """A kernel that never became ready: the student's problem when their files stopped it
    (the notebook is graded with that reason), the grader's when the machine was too slow
    or the sandbox failed (``KernelStartError``: the submission is tried again)."""
    run = live.run
    if said:
        run.problem += f"; the kernel process said: {said}"
    if not run.grader_fault and any(line.startswith(SANDBOX_FAILURES) for line in said.splitlines()):
        run.grader_fault = "the sandbox could not start the kernel"
    if run.grader_fault:
        raise KernelStartError(f"{name}: {run.grader_fault} ({run.problem})")


#: How the sandbox's own start-up failures begin, in the kernel's log.
SANDBOX_FAILURES = ("bwrap:", "[autograder] sandbox:")


def grade_submission(
    assignment: Assignment,
    source: Path | Candidate | Submission,
    *,
    options: GradeOptions = GradeOptions(),
    sandbox: Sandbox | str = "auto",
    out: Path | None = None,
    data: DataContext | None = None,
) -> Grade:
    """Grade one submission, from its path (a notebook, folder or zip) or a batch's
    candidate; with ``out``, write its result folder there.

    The submission is opened and closed here (one already opened is left to its owner);
    so are the datasets, unless ``data`` (opened once for a whole batch) is given.
    ``sandbox`` is a backend or its name; ``auto``, as on the command line, is Docker when
    its engine and the grading image are here, else local.
    """
    with open_run(assignment, source, options=options, data=data) as run:
        return _grade(assignment, run.submission, options=options, sandbox=sandbox, out=out, data=run.data)


@dataclass
class Run:
    """A submission and the datasets it is graded with, open until ``close``."""

    submission: Submission
    data: DataContext | None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run(assignment: Assignment, source: Path | Candidate | Submission, *, options: GradeOptions,
             data: DataContext | None = None) -> Run:
    """Intake of one submission with its datasets (the ones ``data`` gives, else opened
    here as ``options`` say); ``close`` closes what was opened here."""
    submission = source if isinstance(source, Submission) else open_submission(source)
    run = Run(submission, data)
    if submission is not source:
        run._closers.append(submission.close)
    try:
        needed = datasets_read(assignment.rubric, notebooks_submitted(assignment.rubric, submission,
                                                                      only=options.notebooks))
        if data is None and needed:
            assignment.declare_datasets()
            run.data = options.open_data(assignment.rubric, needed)
            if run.data is not None:
                run._closers.append(run.data.close)
    except BaseException:
        run.close()
        raise
    return run


def _grade(
    assignment: Assignment,
    submission: Submission,
    *,
    options: GradeOptions,
    sandbox: Sandbox | str,
    out: Path | None,
    data: DataContext | None,
) -> Grade:
    started = start(assignment, submission, options=options, sandbox=sandbox, data=data)
    try:
        session = started.session
        if submission.problem:
            grade, log = score(session, problem=submission.problem), ""
        else:
            log = run_checks(session)
            grade = score(session)
        grade.bindings = dict(options.bindings)
        if out is not None:
            write_submission(
                out,
                grade,
                source=str(submission.source),
                digest=submission.digest,
                executed=started.executed(),
                log=log,
                sandbox=started.enforced,
                student=submission.student,
                data=data.described() if data is not None else "",
            )
        return grade
    finally:
        started.close()
