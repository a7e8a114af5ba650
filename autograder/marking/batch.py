"""Grade a batch: every submission under the inputs is an independent job.

Jobs go to an executor with the ``concurrent.futures`` interface: in this process for
one worker, a pool of worker processes for more. Each job writes its own result folder,
``grade.json`` last, so a result on disk is complete; a rerun skips submissions already
graded from the same files. A failure of one submission is recorded and the batch goes
on; a broken assignment stops it. Bad options and missing inputs are refused before the
sandbox is probed; an input that holds nothing to grade is reported (``BatchEvents.refused``)
and the rest goes on. Ctrl-C (or SIGTERM, SIGHUP) stops the running jobs cleanly, and a
killed batch leaves at worst folders without ``grade.json``, which the next run grades again.

With ``cluster`` (a Dask ``distributed`` scheduler's address) the jobs run on that
cluster's workers instead (``cluster.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..course.assignment import Assignment, load_assignment
from ..course.rubric import Limits
from ..data.context import DataContext, check_data
from ..errors import AssignmentError, GraderError, SubmissionError, UsageError
from ..grading.binding import load_bindings
from ..grading.intake import Candidate, Intake, Student, check_inputs, notebook_names
from ..grading.pipeline import GradeOptions, datasets_read, grade_submission
from ..grading.preflight import notebooks_held
from ..grading.record import Status, Word
from ..grading.report import ERROR_FILE, load_grade, load_grades, write_batch_summary
from ..sandboxes.backends import as_sandbox
from ..sandboxes.sandbox import Sandbox
from . import gpus as gpu_pool


class EntryStatus(Word):
    """How one submission of a batch went."""

    RUNNING = "running"
    GRADED = "graded"
    SKIPPED = "skipped"  # already graded from the same files
    ERROR = "error"  # the grader failed on it (tried again, then flagged for a marker)


@dataclass
class BatchEntry:
    """How one submission of a batch went."""

    id: str
    source: Path
    status: EntryStatus
    seconds: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)
    message: str = ""
    detail: str = ""
    student: Student | None = None
    origin: str = ""
    attempts: int = 1
    worker: str = ""  # where it runs, on a cluster: the Dask worker's address and host


class BatchEvents:
    """What a batch reports while it runs; the command line shows it as a progress bar."""

    def begin(self, count: int, to_grade: int) -> None:
        """``count`` submissions found, ``to_grade`` of them not graded yet."""

    def note(self, text: str) -> None:
        """Something about the inputs as a whole (an entry that is nobody's submission)."""

    def refused(self, text: str) -> None:
        """An input holds nothing to grade ('x.zip: not a zip file'); the rest goes on."""

    def start(self, entry: BatchEntry) -> None:
        """A worker began grading ``entry``."""

    def done(self, entry: BatchEntry) -> None:
        """``entry`` is graded (or skipped, or failed); its result is on disk."""


@dataclass(frozen=True)
class Job:
    candidate: Candidate
    folder: Path
    options: GradeOptions


#: Opens the client of a cluster for a number of jobs to grade (only then is it reached, or
#: are its Slurm jobs queued: a rerun with nothing left to grade starts nothing).
ClusterClient = Callable[[int], contextlib.AbstractContextManager[Any]]


def default_workers(limits: Limits | None = None) -> int:
    """As many jobs as the GPUs hold by the rubric's need: one per GPU, or several on one
    GPU when the rubric declares ``gpu_memory_gb`` and theirs fit; one at a time without
    GPUs or for CPU-only work."""
    return max(1, len(gpu_pool.worker_slots(limits or Limits())))


def check_arguments(assignment: Assignment, paths: list[Path], options: GradeOptions) -> list[str]:
    """Refuse, before anything slow, inputs that do not exist and data options that cannot
    give the datasets the grading reads (``UsageError``, naming what is wrong). Returns
    those datasets: the ones the notebooks found under ``paths`` read (a batch of only
    the notebooks that read none needs no data)."""
    check_inputs(paths)
    rubric = assignment.rubric
    held = notebooks_held(rubric, notebook_names(paths), only=options.notebooks)
    needed = datasets_read(rubric, held)
    try:
        check_data(needed, data_dir=options.data_dir, synthetic=options.synthetic)
    except UsageError as error:
        readers = [spec.file for spec in rubric.notebooks if spec.file in held and spec.datasets]
        raise UsageError(f"{error}\n(the submissions hold {', '.join(readers)}, which read datasets)") from None
    return needed


def grade_batch(
    assignment: Assignment,
    paths: list[Path],
    *,
    out_dir: Path,
    options: GradeOptions = GradeOptions(),
    regrade: bool = False,
    sandbox: Sandbox | str = "auto",
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: Path | None = None,
    events: BatchEvents | None = None,
) -> list[BatchEntry]:
    """Grade every submission under ``paths`` into ``out_dir``, one result folder each.

    The defaults are the command line's: ``sandbox`` a backend or its name (``auto``:
    Docker when its engine and the grading image are here, else local), ``workers``
    submissions at once (``None``: one per GPU, one without GPUs). ``cluster``: the
    address of a Dask scheduler (``dask://HOST:PORT`` or ``tcp://HOST:PORT``) whose
    workers grade the jobs instead of this machine (not with ``workers``), or ``slurm``:
    workers started as Slurm jobs, by the rubric's ``slurm:`` settings with those of the
    YAML file ``cluster_config`` over them.
    """
    events = events or BatchEvents()
    assignment.rubric  # noqa: B018 (validated before any work)
    if cluster is not None and workers is not None:
        raise UsageError("give either a number of workers (-j) or a cluster (--cluster), not both")
    from .cluster import cluster_address, connect_for

    address = cluster_address(cluster) if cluster is not None else None
    if cluster_config is not None and address != "slurm":
        raise UsageError("a cluster configuration file is read with --cluster slurm only")
    needed = check_arguments(assignment, paths, options)
    sandbox = as_sandbox(sandbox)
    limits = options.limits(assignment.rubric.limits)
    workers = workers or (1 if address is not None else default_workers(limits))  # a cluster's workers decide
    cluster_client: ClusterClient | None = None
    if address == "slurm":
        from .slurm import load_settings, slurm_client

        settings = load_settings(assignment.rubric.slurm, cluster_config)
        cluster_client = functools.partial(slurm_client, settings, limits, out_dir=out_dir, note=events.note)
    elif address is not None:
        cluster_client = connect_for(address)
    sandbox.check()  # a sandbox that cannot run kernels stops the batch before it starts (or queues a job)
    return _grade_batch(assignment, paths, out_dir=out_dir, options=options, regrade=regrade, sandbox=sandbox,
                        workers=workers, cluster_client=cluster_client, events=events, needed=needed)


def _grade_batch(assignment: Assignment, paths: list[Path], *, out_dir: Path, options: GradeOptions, regrade: bool,
                 sandbox: Sandbox, workers: int, cluster_client: ClusterClient | None,
                 events: BatchEvents, needed: list[str]) -> list[BatchEntry]:
    from .cluster import SCRATCH, temp_under

    rubric = assignment.rubric
    options = replace(options, hidden=(*options.hidden, out_dir.resolve(), *(path.resolve() for path in paths)))
    out_dir.mkdir(parents=True, exist_ok=True)
    # on a cluster, what this process unpacks or stages must be where the workers see it
    scratch_root = out_dir.resolve() / SCRATCH if cluster_client is not None else None
    with temp_under(scratch_root):
        intake = Intake(paths, [spec.file for spec in rubric.notebooks])
    try:
        with intake:
            return _grade_intake(assignment, intake, out_dir=out_dir, options=options, regrade=regrade,
                                 sandbox=sandbox, workers=workers, cluster_client=cluster_client, events=events,
                                 needed=needed, scratch_root=scratch_root)
    finally:
        if scratch_root is not None:
            shutil.rmtree(scratch_root / f"autograder-run-{os.getpid()}", ignore_errors=True)
            with contextlib.suppress(OSError):
                scratch_root.rmdir()  # only when empty: another run may be using it


def _grade_intake(assignment: Assignment, intake: Intake, *, out_dir: Path, options: GradeOptions, regrade: bool,
                  sandbox: Sandbox, workers: int, cluster_client: ClusterClient | None,
                  events: BatchEvents, needed: list[str],
                  scratch_root: Path | None) -> list[BatchEntry]:
    from .cluster import clustered, temp_under

    rubric = assignment.rubric
    options = replace(options, hidden=(*options.hidden, *intake.scratch()))
    for note in intake.notes:
        events.note(note)
    for problem in intake.problems:
        events.refused(problem)
    grades = load_grades(out_dir)
    entries: dict[str, BatchEntry] = {}
    jobs: list[Job] = []
    for candidate in intake.candidates:
        previous = grades.get(candidate.id)
        try:  # names a marker bound by hand for this submission: a change grades it again
            bindings = load_bindings(out_dir / candidate.id)
        except SubmissionError as error:
            events.refused(f"{candidate.id}: not graded again until its bindings are fixed: {error}")
            continue
        if (not regrade and previous and previous.digest == candidate.digest
                and previous.public_only == options.public_only and previous.bindings == bindings
                and not (out_dir / candidate.id / ERROR_FILE).exists()):
            entries[candidate.id] = BatchEntry(candidate.id, candidate.path, EntryStatus.SKIPPED,
                                               totals=previous.totals(),
                                               message="already graded from the same files",
                                               student=candidate.student, origin=candidate.origin)
        else:
            jobs.append(Job(candidate, out_dir / candidate.id, replace(options, bindings=bindings)))
    events.begin(len(intake.candidates), len(jobs))
    for entry in entries.values():
        events.done(entry)

    def finished(entry: BatchEntry) -> None:
        grade = load_grade(out_dir / entry.id)
        if grade is not None:
            grades[entry.id] = grade
        write_batch_summary(out_dir, list(grades.values()))
        entries[entry.id] = entry
        events.done(entry)

    if jobs:
        assignment.declare_datasets()
        with temp_under(scratch_root):  # a data view for a cluster's workers is staged where they see it
            data = options.open_data(rubric, needed)  # missing data stops the batch here, before any job
        try:
            if cluster_client is not None:
                shared = [out_dir, assignment.folder, *intake.scratch()]
                if data is not None:
                    shared += [data.source, data.view]
                with cluster_client(len(jobs)) as client:
                    clustered(assignment, jobs, sandbox=sandbox, data=data, client=client, shared=shared,
                              events=events, finished=finished, pending=_pending, failed=_failed, run_job=run_job)
            elif workers <= 1 or len(jobs) == 1:
                _inline(assignment, jobs, sandbox=sandbox, data=data, events=events, finished=finished)
            else:
                _pooled(assignment, jobs, sandbox=sandbox, data=data, workers=workers, events=events,
                        finished=finished)
        finally:
            if data is not None:
                data.close()
    write_batch_summary(out_dir, list(grades.values()))
    return [entries[c.id] for c in intake.candidates if c.id in entries]


def run_job(assignment: Assignment, job: Job, *, sandbox: Sandbox, data: DataContext | None) -> BatchEntry:
    """Grade one submission into its result folder. Where the grader failed (a kernel that
    did not start in time, a check that raised instead of giving its verdict), it is tried
    again, with a pause between tries; what still fails is written to ``error.txt``."""
    waits = retry_waits()
    for attempt in range(len(waits) + 1):
        entry = _attempt(assignment, job, sandbox=sandbox, data=data)
        entry.attempts = attempt + 1
        if entry.status is not EntryStatus.ERROR or attempt == len(waits):
            break
        time.sleep(waits[attempt])
    if entry.status is EntryStatus.ERROR:
        _write_error(job.folder, entry)
    else:
        (job.folder / ERROR_FILE).unlink(missing_ok=True)
    return entry


def retry_waits() -> list[float]:
    """Seconds to wait before each further try of a submission the grader failed on
    (``AUTOGRADER_RETRY_WAITS``, comma-separated; default two more tries, after 10 and 60 s)."""
    text = os.environ.get("AUTOGRADER_RETRY_WAITS", "10,60")
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"AUTOGRADER_RETRY_WAITS={text!r}: expected seconds separated by commas") from None


def _attempt(assignment: Assignment, job: Job, *, sandbox: Sandbox, data: DataContext | None) -> BatchEntry:
    """One try at grading a submission; any failure becomes the entry's message."""
    candidate = job.candidate
    entry = BatchEntry(candidate.id, candidate.path, EntryStatus.GRADED, student=candidate.student,
                       origin=candidate.origin)
    began = time.monotonic()
    try:
        grade = grade_submission(assignment, candidate, options=job.options, sandbox=sandbox, out=job.folder,
                                 data=data)
        entry.totals = grade.totals()
        entry.message = grade.problem
        failed = [item for item in grade.items if item.status is Status.ERROR]
        if failed:  # written to grade.json for the marker, and tried again
            entry.status = EntryStatus.ERROR
            entry.message = "the grader failed on " + "; ".join(f"{item.id}: {item.reason}" for item in failed)
    except AssignmentError:
        raise
    except GraderError as error:
        entry.status, entry.message = EntryStatus.ERROR, str(error)
    except Exception as error:  # one submission must never stop the batch
        entry.status, entry.message = EntryStatus.ERROR, f"grader failed: {type(error).__name__}: {error}"
        entry.detail = traceback.format_exc()
    entry.seconds = time.monotonic() - began
    return entry


def _write_error(folder: Path, entry: BatchEntry) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_FILE).write_text(f"{entry.message}\n\n{entry.detail}", encoding="utf-8")


def _inline(assignment: Assignment, jobs: list[Job], *, sandbox: Sandbox, data: DataContext | None,
            events: BatchEvents, finished: Any) -> None:
    sandbox.release()  # whatever a killed run left behind
    for job in jobs:
        events.start(_pending(job))
        finished(run_job(assignment, job, sandbox=sandbox, data=data))


def _failed(job: Job, message: str) -> BatchEntry:
    """The grader's failure on ``job``: an error entry, its reason written beside the results."""
    entry = _pending(job)
    entry.status, entry.message = EntryStatus.ERROR, message
    _write_error(job.folder, entry)
    return entry


def _pending(job: Job) -> BatchEntry:
    return BatchEntry(job.candidate.id, job.candidate.path, EntryStatus.RUNNING, student=job.candidate.student,
                      origin=job.candidate.origin)


def _pooled(assignment: Assignment, jobs: list[Job], *, sandbox: Sandbox, data: DataContext | None, workers: int,
            events: BatchEvents, finished: Any) -> None:
    """Jobs in a pool of worker processes; each worker has a sandbox (and a GPU) of its own."""
    count = min(workers, len(jobs))
    context = multiprocessing.get_context("spawn")
    slots: Any = context.Queue()
    pids: Any = context.Queue()
    for slot in range(count):
        slots.put(slot)
    gpus = _gpus_per_worker(assignment, jobs[0].options, count)
    sandboxes = [sandbox.for_slot(slot) for slot in range(count)]
    pool = ProcessPoolExecutor(count, mp_context=context, initializer=_worker_init,
                               initargs=(str(assignment.folder), sandboxes, gpus, slots, pids, data))
    order: Iterator[Job] = iter(jobs)
    futures: dict[Future[BatchEntry], Job] = {}
    try:
        for job in jobs:
            futures[pool.submit(_worker_run, job)] = job
        for _ in range(count):
            events.start(_pending(next(order)))
        for future in as_completed(futures):
            job = futures[future]
            try:
                entry = future.result()
            except (AssignmentError, KeyboardInterrupt):
                raise
            except BrokenProcessPool:
                entry = _pending(job)
                entry.status = EntryStatus.ERROR
                entry.message = "a grader worker process died; run the batch again to retry"
                _write_error(job.folder, entry)
            except Exception as error:
                entry = _pending(job)
                entry.status, entry.message = EntryStatus.ERROR, f"grader failed: {type(error).__name__}: {error}"
                _write_error(job.folder, entry)
            finished(entry)
            following = next(order, None)
            if following is not None:
                events.start(_pending(following))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _interrupt_workers(pids)
        raise
    pool.shutdown(wait=True)


def _gpus_per_worker(assignment: Assignment, options: GradeOptions, count: int) -> list[str | None]:
    """With GPUs and the rubric's "auto", worker k sees the devices of slot k (round robin
    over ``gpus.worker_slots``: a GPU of its own, or a share of one when the rubric's declared GPU
    memory fits several); otherwise as asked."""
    if options.gpus is not None:
        return [None] * count
    found = gpu_pool.worker_slots(options.limits(assignment.rubric.limits), assignment.id)
    if not found:
        return [None] * count
    return [",".join(found[slot % len(found)]) for slot in range(count)]


def _interrupt_workers(pids: Any) -> None:
    """Ask each worker to stop its submission: its kernels are shut down, nothing half-written stays."""
    while True:
        try:
            pid = pids.get_nowait()
        except Exception:  # the queue is empty
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


# -- inside a worker process

_WORKER: dict[str, Any] = {}


def _stop_job(signum: int, frame: Any) -> None:
    """SIGTERM (from the batch, or because it died): stop the submission, then the worker."""
    _WORKER["stopping"] = True
    if _WORKER.get("busy"):
        raise KeyboardInterrupt  # the submission's kernels are shut down on the way out
    os._exit(128 + signum)


def _worker_init(assignment_folder: str, sandboxes: list[Sandbox], gpus: list[str | None], slots: Any, pids: Any,
                 data: DataContext | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch decides; it sends SIGTERM
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal hangs up the whole group: the same
    signal.signal(signal.SIGTERM, _stop_job)
    try:  # end with the batch process even when it is killed outright
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    slot = slots.get()
    pids.put(os.getpid())
    sandbox = sandboxes[slot]
    sandbox.check()
    sandbox.release()  # whatever a killed run left behind
    _WORKER.update(assignment=load_assignment(assignment_folder), sandbox=sandbox, gpus=gpus[slot], data=data)


def _worker_run(job: Job) -> BatchEntry:
    if _WORKER["gpus"] is not None:
        job = replace(job, options=replace(job.options, gpus=_WORKER["gpus"]))
    _WORKER["busy"] = True
    try:
        return run_job(_WORKER["assignment"], job, sandbox=_WORKER["sandbox"], data=_WORKER["data"])
    finally:
        _WORKER["busy"] = False
        if _WORKER.get("stopping"):
            os._exit(128 + signal.SIGTERM)  # the batch is gone or going: nothing to report to
