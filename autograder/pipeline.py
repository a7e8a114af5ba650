"""The grading pipeline. The stage order lives here and nowhere else:

    intake -> preflight -> execute -> check -> score -> report

``grade_submission`` grades one submission; ``grade_batch`` grades many, writing each
result as soon as it is done and skipping those already graded from the same files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from .assignment import Assignment
from .channel import KernelChannel
from .data.context import DataContext, cache_root, open_data
from .check import run_checks
from .errors import AssignmentError, GraderError
from .execute import LiveNotebook, execute_notebook
from .intake import Submission, digest, discover, open_submission, submission_id
from .outcomes import CheckSession
from .preflight import preflight
from .report import load_record, write_batch_summary, write_submission
from .rubric import Limits, Rubric
from .sandbox import LocalSandbox, Place, Resources, Sandbox, private_dir
from .score import Grade, score


@dataclass(frozen=True)
class GradeOptions:
    """How to grade; ``None`` limits mean the rubric's own."""

    cell_timeout_s: float | None = None
    total_timeout_s: float | None = None
    probe_timeout_s: float | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    public_only: bool = False
    notebooks: tuple[str, ...] = ()  # grade only these of the rubric's notebooks; empty: all
    data_dir: Path | None = None  # the course's data folder, for assignments that read datasets
    synthetic: bool = False  # without data_dir: grade on synthetic stand-ins
    synthetic_scale: str | None = None  # None: the rubric's
    full_size: bool = False  # on synthetic data too, keep the notebooks' own epochs and sizes
    memory_mb: int | None = None
    scratch_mb: int | None = None
    gpus: str | None = None  # auto | all | none | indices
    hidden: tuple[Path, ...] = ()  # more grader folders kernels must not read (a batch's input and results)

    def open_data(self, rubric: Rubric) -> DataContext | None:
        """The datasets the graded notebooks read; None when they read none."""
        return open_data(rubric.datasets(self.notebooks), data_dir=self.data_dir, synthetic=self.synthetic,
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
            "gpus": self.gpus,
        }
        return rubric_limits.model_copy(update={k: v for k, v in changes.items() if v is not None})


def resources(limits: Limits) -> Resources:
    """What one kernel may use, from the run's limits."""
    budget = limits.total_timeout_s + limits.probe_timeout_s * 10  # running, then being probed
    return Resources(
        memory_mb=limits.memory_mb,
        cpus=limits.cpus,
        processes=limits.processes,
        file_size_mb=limits.scratch_mb,
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
    workdir = Path(tempfile.mkdtemp(prefix=f"autograder-{submission.id}-"))
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
        stage_as = spec.stage_as if spec else "data"
        for cwd in set(cwd_of.values()):
            (cwd / stage_as).mkdir(exist_ok=True)
            for entry in datasets.entries():
                link = cwd / stage_as / entry.name
                if link.exists() or link.is_symlink():
                    shutil.rmtree(link) if link.is_dir() and not link.is_symlink() else link.unlink()
                link.symlink_to(entry)
    return workdir, cwd_of


def start(
    assignment: Assignment,
    submission: Submission,
    *,
    options: GradeOptions,
    sandbox: Sandbox | None = None,
    data: DataContext | None = None,
) -> Started:
    """Stages intake → preflight → execute: every expected notebook run, kernels kept alive.

    ``data`` is the run's datasets (see ``GradeOptions.open_data``); required when the
    rubric lists datasets.
    """
    sandbox = sandbox or LocalSandbox()
    rubric = assignment.rubric
    if rubric.datasets(options.notebooks) and data is None:
        raise GraderError(f"{assignment.id} reads datasets but none were opened for this run")
    limits = options.limits(rubric.limits)
    checked = preflight(rubric, submission, only=options.notebooks)
    parameters = options.notebook_parameters(rubric, data)
    session = CheckSession(
        assignment,
        submission=submission.id,
        unavailable=dict(checked.unavailable),
        public_only=options.public_only,
        only_notebooks=set(options.notebooks),
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
        for name, nb in checked.notebooks.items():
            place = Place(workdir=workdir, cwd=cwd_of[name], private=private_dir(), readonly=readonly,
                          hidden=hidden, resources=resources(limits))
            started.scratch.append(place.private)
            live = execute_notebook(
                nb,
                name=name,
                manager=sandbox.kernel_manager(place),
                cwd=place.cwd,
                env=sandbox.kernel_env(place),
                cell_timeout=limits.cell_timeout_s,
                total_timeout=limits.total_timeout_s,
                max_output_bytes=limits.max_output_bytes,
                parameters=parameters,
            )
            if live.run.problem.startswith("the kernel could not start") and place.log_tail():
                live.run.problem += f"; the kernel process said: {place.log_tail()}"
            why = sandbox.explain(place) if live.run.problem else ""
            if why:
                live.run.problem += f" ({why})"
            started.lives[name] = live
            started.enforced[name] = sandbox.enforced(place)
            session.runs.append(live.run)
            session.channels[name] = KernelChannel(live, timeout=limits.probe_timeout_s)
    except BaseException:
        started.close()
        raise
    return started


def grade_submission(
    assignment: Assignment,
    submission: Submission,
    *,
    options: GradeOptions = GradeOptions(),
    sandbox: Sandbox | None = None,
    out: Path | None = None,
    data: DataContext | None = None,
) -> Grade:
    """Grade one submission; with ``out``, write its result folder there.

    ``data``: datasets opened for a whole batch; opened (and closed) here if not given.
    """
    own_data = data is None and bool(assignment.rubric.datasets(options.notebooks))
    if own_data:
        data = options.open_data(assignment.rubric)
    try:
        return _grade(assignment, submission, options=options, sandbox=sandbox, out=out, data=data)
    finally:
        if own_data and data is not None:
            data.close()


def _grade(
    assignment: Assignment,
    submission: Submission,
    *,
    options: GradeOptions,
    sandbox: Sandbox | None,
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
        if out is not None:
            write_submission(
                out,
                grade,
                source=str(submission.source),
                digest=digest(submission.source),
                executed=started.executed(),
                log=log,
                sandbox=started.enforced,
            )
        return grade
    finally:
        started.close()


@dataclass
class BatchEntry:
    """How one submission of a batch went."""

    id: str
    source: Path
    status: str  # graded | skipped | error
    seconds: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)
    message: str = ""
    detail: str = ""


Listener = Callable[[str, BatchEntry], None]


def _unique_ids(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for path in paths:
        base = submission_id(path)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def grade_batch(
    assignment: Assignment,
    paths: list[Path],
    *,
    out_dir: Path,
    options: GradeOptions = GradeOptions(),
    regrade: bool = False,
    sandbox: Sandbox | None = None,
    listener: Listener | None = None,
) -> list[BatchEntry]:
    """Grade every submission under ``paths`` into ``out_dir``, one result folder each.

    A submission already graded from identical files is skipped unless ``regrade``.
    A failure of one submission is recorded and the batch goes on; a broken assignment
    (its checks disagree with its rubric) stops the batch at once.
    """
    rubric = assignment.rubric  # validated before any work
    sandbox = sandbox or LocalSandbox()
    sandbox.check()  # a sandbox that cannot run kernels stops the batch before it starts
    options = replace(options, hidden=(*options.hidden, out_dir.resolve(), *(path.resolve() for path in paths)))
    sources = discover(paths, [spec.file for spec in rubric.notebooks])
    out_dir.mkdir(parents=True, exist_ok=True)
    opened: list[DataContext | None] = []

    def data() -> DataContext | None:
        """The datasets' view, made when the first submission needs grading (a rerun may need none)."""
        if not opened:
            opened.append(options.open_data(rubric))
        return opened[0]

    try:
        return _grade_each(assignment, sources, out_dir=out_dir, options=options, regrade=regrade,
                           sandbox=sandbox, listener=listener, data=data)
    finally:
        if opened and opened[0] is not None:
            opened[0].close()


def _grade_each(
    assignment: Assignment,
    sources: list[Path],
    *,
    out_dir: Path,
    options: GradeOptions,
    regrade: bool,
    sandbox: Sandbox | None,
    listener: Listener | None,
    data: Callable[[], DataContext | None],
) -> list[BatchEntry]:
    notify = listener or (lambda event, entry: None)
    entries: list[BatchEntry] = []
    for ident, source in zip(_unique_ids(sources), sources):
        folder = out_dir / ident
        entry = BatchEntry(ident, source, "graded")
        previous = load_record(folder)
        if (
            not regrade
            and previous
            and previous.get("digest") == digest(source)
            and previous.get("public_only") == options.public_only
        ):
            entry.status, entry.totals = "skipped", previous["totals"]
            entry.message = "already graded from the same files"
            entries.append(entry)
            notify("done", entry)
            continue
        datasets = data()  # missing data is the batch's problem, not this submission's: it stops here
        notify("start", entry)
        began = time.monotonic()
        submission = open_submission(source, ident=ident)
        try:
            grade = grade_submission(assignment, submission, options=options, sandbox=sandbox, out=folder, data=datasets)
            entry.totals = grade.totals()
            entry.message = grade.problem
        except (AssignmentError, KeyboardInterrupt):
            raise
        except GraderError as error:
            entry.status, entry.message = "error", str(error)
        except Exception as error:  # one submission must never stop the batch
            entry.status, entry.message = "error", f"grader failed: {type(error).__name__}: {error}"
            entry.detail = traceback.format_exc()
        finally:
            submission.close()
        entry.seconds = time.monotonic() - began
        if entry.status == "error":
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "error.txt").write_text(f"{entry.message}\n\n{entry.detail}", encoding="utf-8")
        write_batch_summary(out_dir)
        entries.append(entry)
        notify("done", entry)
    return entries
