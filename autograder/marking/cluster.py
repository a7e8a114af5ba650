"""Grading on a Dask cluster: the jobs of a batch (``batch.py``) run on the workers of a
running ``distributed`` scheduler instead of this machine.

Each worker loads the assignment from its folder and grades into the
results folder, so the assignment, the results folder (where a Moodle download is unpacked,
under ``.scratch``) and the data folder must be on storage every worker sees; this is
checked before any job is sent. A worker lost mid-submission has its job run again on
another worker, from a clean folder (as often as the scheduler's
``distributed.scheduler.allowed-failures`` lets it: 1 suits grading; Dask's default is 3); a
job whose workers keep dying is the grader's error. Workers are best started with Dask's
statistical profiler off (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``): it costs
a few percent of the grading time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..course.assignment import Assignment, load_assignment
from ..course.rubric import Limits
from ..data.context import DataContext
from ..errors import AssignmentError, UsageError
from ..grading.report import GRADE_FILE
from ..sandboxes.sandbox import Sandbox
from . import gpus as gpu_pool

if TYPE_CHECKING:
    from ..grading.pipeline import GradeOptions
    from .batch import BatchEntry, BatchEvents, Job

SCRATCH = ".scratch"  # under the results folder: Moodle downloads unpacked where a cluster's workers see them
_CLUSTER_SCHEMES = ("dask://", "tcp://", "tls://")
CONNECT_TIMEOUT_S = 20


def cluster_address(text: str) -> str:
    """The scheduler address ``distributed`` connects to, from ``dask://HOST:PORT`` (or
    ``tcp://`` / ``tls://``); ``slurm`` as it is (workers started as Slurm jobs, ``slurm.py``);
    a ``UsageError`` for anything else."""
    if text == "slurm":
        return text
    scheme = next((s for s in _CLUSTER_SCHEMES if text.startswith(s)), None)
    rest = text[len(scheme):] if scheme else ""
    host, _, port = rest.rpartition(":")
    if scheme is None or not host or not port.isdigit():
        raise UsageError(f"--cluster {text!r}: expected dask://HOST:PORT (a Dask scheduler's address) or slurm")
    return ("tcp://" if scheme == "dask://" else scheme) + rest


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A client of the scheduler at ``address``, with at least one worker."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--cluster needs the Dask 'distributed' package: pip install distributed") from None
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise UsageError(f"the Dask cluster at {address} has no workers "
                             f"(none joined in {CONNECT_TIMEOUT_S} s)") from None
        yield client
    finally:
        client.close()


def connect_for(address: str) -> Callable[[int], contextlib.AbstractContextManager[Any]]:
    """What opens the running cluster at ``address`` for a batch: its size is its own,
    whatever the number of jobs."""
    return lambda jobs: connect(address)


@contextlib.contextmanager
def temp_under(folder: Path | None) -> Iterator[None]:
    """Temporary folders made meanwhile in this process go under ``folder`` (None: where they
    always go). The intake and the data view make theirs with ``tempfile``."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def check_workers(client: Any, *, writable: Path, shared: list[Path]) -> None:
    """Refuse (``UsageError``, naming the workers and the paths) a cluster whose workers do
    not all see the folders the jobs read and write: ``shared`` must be there, and a file
    can be written and removed in ``writable``."""
    found: dict[str, list[str]] = client.run(_worker_sees, str(writable.resolve()),
                                             [str(path.resolve()) for path in shared])
    problems = {worker: missing for worker, missing in found.items() if missing}
    if problems:
        lines = [f"  {worker}: {', '.join(missing)}" for worker, missing in sorted(problems.items())]
        raise UsageError(f"{len(problems)} of the cluster's {len(found)} worker(s) do not see the folders the "
                         "batch shares (the assignment, the results folder, the data; put them on storage every "
                         "worker mounts at the same path):\n" + "\n".join(lines))


def _worker_sees(writable: str, shared: list[str]) -> list[str]:
    """On a worker: what of the batch's folders it does not see (or cannot write)."""
    missing = [f"{path} (not found)" for path in shared if not os.path.exists(path)]
    probe = os.path.join(writable, f".probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}")
    try:
        with open(probe, "x") as handle:
            handle.write("autograder\n")
        os.remove(probe)
    except OSError as error:
        missing.append(f"{writable} (cannot write: {error.strerror or error})")
    return missing


def check_gpus(client: Any, assignment: Assignment, options: GradeOptions, *, note: Callable[[str], None]) -> None:
    """Refuse (``UsageError``) a cluster with a worker whose GPUs cannot meet the rubric's
    need; say where a worker runs more threads than its GPUs hold gradings (the others
    wait for a slot)."""
    found: dict[str, tuple[int | None, int, str]] = client.run(_worker_gpu_slots, assignment.rubric.limits, options)
    refused = {worker: problem for worker, (_, _, problem) in found.items() if problem}
    if refused:
        lines = [f"  {worker}: {problem}" for worker, problem in sorted(refused.items())]
        raise UsageError(f"{len(refused)} of the cluster's {len(found)} worker(s) cannot grade this assignment "
                         "on their GPUs:\n" + "\n".join(lines))
    for worker, (count, threads, _) in sorted(found.items()):
        if count is not None and count < threads:
            note(f"worker {worker} runs {threads} threads but its GPUs hold {count} grading(s) at once: "
                 "the others wait for a GPU")


def _worker_gpu_slots(limits: Limits, options: GradeOptions, dask_worker: Any = None) -> tuple[int | None, int, str]:
    """On a worker (``Client.run`` passes it): how many gradings its GPUs hold at once (None:
    no limit, the kernels' GPUs as asked), its threads, and why it cannot grade (empty when
    it can)."""
    threads = dask_worker.state.nthreads
    try:
        found = _slots_for(limits, options)
    except UsageError as error:
        return 0, threads, str(error)
    return (None if found is None else len(found)), threads, ""


def _slots_for(limits: Limits, options: GradeOptions) -> list[str] | None:
    """The devices each grading slot of this machine's kernels sees, by ``gpus.worker_slots``;
    None where the kernels' GPUs stay as asked (``--gpus`` given, CPU-only work, no GPU)."""
    if options.gpus is not None:
        return None
    found = gpu_pool.worker_slots(options.limits(limits))
    return [",".join(slot) for slot in found] or None


def clustered(assignment: Assignment, jobs: list[Job], *, sandbox: Sandbox, data: DataContext | None, client: Any,
               shared: list[Path], events: BatchEvents, finished: Any, pending: Callable[[Job], BatchEntry],
               failed: Callable[[Job, str], BatchEntry], run_job: Callable[..., BatchEntry]) -> None:
    """Jobs on a Dask cluster's workers; each worker thread has a sandbox of its own. A job
    whose worker is lost is run again by the scheduler on another worker (as many times as
    its ``distributed.scheduler.allowed-failures`` allows) and, when it runs out of
    workers, is the grader's error."""
    from distributed import KilledWorker

    check_workers(client, writable=jobs[0].folder.parent, shared=[*shared, *(job.candidate.path for job in jobs)])
    check_gpus(client, assignment, jobs[0].options, note=events.note)
    run = uuid.uuid4().hex[:8]
    topic = f"autograder-started-{run}"
    started: queue.Queue[dict[str, str]] = queue.Queue()
    client.subscribe_topic(topic, lambda event: started.put(event[1]))
    by_id = {job.candidate.id: job for job in jobs}
    futures: dict[Any, Job] = {}
    ended: queue.Queue[Any] = queue.Queue()  # futures as they finish (their callbacks run on another thread)
    for job in jobs:
        future = client.submit(_cluster_run, str(assignment.folder), job, sandbox.for_slot(0), data, topic, run,
                               run_job, key=f"autograder-{job.candidate.id}-{run}", pure=False, retries=0)
        futures[future] = job
        future.add_done_callback(ended.put)
    waiting = set(futures)
    places: dict[str, str] = {}  # where each job last started

    def report_started() -> None:
        while True:
            try:
                message = started.get_nowait()
            except queue.Empty:
                return
            job = by_id.get(message.get("id", ""))
            if job is not None:
                entry = pending(job)
                slurm = f"Slurm job {message['slurm_job']}" if message.get("slurm_job") else ""
                where = ", ".join(filter(None, [message.get("host", ""), slurm]))
                entry.worker = places[job.candidate.id] = f"{message.get('worker', '')} ({where})"
                events.start(entry)

    try:
        while waiting:
            try:
                future = ended.get(timeout=0.5)
            except queue.Empty:
                report_started()
                continue
            report_started()
            waiting.discard(future)
            job = futures[future]
            try:
                entry = future.result()
            except (AssignmentError, KeyboardInterrupt):
                raise
            except KilledWorker as error:
                entry = failed(job, "the Dask workers grading it died (the grader's failure, not the student's; "
                                    "on Slurm, a worker job's walltime shorter than one grading ends it too); "
                                    f"run the batch again to retry: {error}")
            except Exception as error:  # cancelled, or lost with the scheduler: the grader's failure
                entry = failed(job, f"grader failed: {type(error).__name__}: {error}")
            entry.worker = places.get(job.candidate.id, entry.worker)
            finished(entry)
    except BaseException:
        client.cancel(list(waiting))  # a job already running on a worker finishes there; its result stays whole
        raise
    finally:
        client.unsubscribe_topic(topic)


# -- on a Dask worker

_CLUSTER: dict[tuple[str, str], Assignment] = {}  # the assignment of the batch this worker now grades
_CLUSTER_LOCK = threading.Lock()
_SLOTS: dict[tuple[str, str], queue.Queue[str] | None] = {}  # the GPU slots of the batch this worker grades
_CLUSTER_LOCAL = threading.local()


def _cluster_run(assignment_folder: str, job: Job, sandbox: Sandbox, data: DataContext | None, topic: str,
                 run: str, run_job: Callable[..., BatchEntry]) -> BatchEntry:
    """One job on a Dask worker: a result folder left without ``grade.json`` (a worker lost
    while writing it, or a killed batch) is removed first, so the job starts clean. The
    assignment is loaded once per batch (``run``): a later batch sees an edited rubric."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(topic, {"id": job.candidate.id, "worker": str(worker.address), "host": socket.gethostname(),
                             "slurm_job": os.environ.get("SLURM_JOB_ID", "")})
    with _CLUSTER_LOCK:
        assignment = _CLUSTER.get((assignment_folder, run))
        if assignment is None:
            _CLUSTER.clear()
            assignment = _CLUSTER[(assignment_folder, run)] = load_assignment(assignment_folder)
    slots = _gpu_slots(assignment_folder, run, assignment, job.options)
    if slots is None:
        return _run_in_thread_sandbox(job, assignment, sandbox, data, run_job)
    gpus = slots.get()  # waits while the worker's GPUs are full
    try:
        job = replace(job, options=replace(job.options, gpus=gpus))
        return _run_in_thread_sandbox(job, assignment, sandbox, data, run_job)
    finally:
        slots.put(gpus)


def _gpu_slots(assignment_folder: str, run: str, assignment: Assignment,
               options: GradeOptions) -> queue.Queue[str] | None:
    """This worker's GPU slots for the batch ``run``, shared by its threads: each grading
    takes one (the devices its kernel sees) and gives it back. None: no GPU placement."""
    with _CLUSTER_LOCK:
        key = (assignment_folder, run)
        if key not in _SLOTS:
            _SLOTS.clear()
            found = _slots_for(assignment.rubric.limits, options)
            pool: queue.Queue[str] | None = None
            if found is not None:
                pool = queue.Queue()
                for slot in found:
                    pool.put(slot)
            _SLOTS[key] = pool
        return _SLOTS[key]


def _run_in_thread_sandbox(job: Job, assignment: Assignment, sandbox: Sandbox, data: DataContext | None,
                           run_job: Callable[..., BatchEntry]) -> BatchEntry:
    mine = getattr(_CLUSTER_LOCAL, "sandbox", None)
    if mine is None or type(mine) is not type(sandbox):
        sandbox.check()  # claims a sandbox user no other worker on this host uses
        sandbox.release()  # whatever a killed run left behind
        _CLUSTER_LOCAL.sandbox = mine = sandbox
    if job.folder.exists() and not (job.folder / GRADE_FILE).exists():
        shutil.rmtree(job.folder)
    return run_job(assignment, job, sandbox=mine, data=data)
