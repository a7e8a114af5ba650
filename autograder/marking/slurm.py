"""Grading on a university's Slurm: ``autograder grade … --cluster slurm`` asks Slurm for
worker jobs through dask-jobqueue's ``SLURMCluster`` and grades on them as on any Dask
cluster (``cluster.py``).

The Dask scheduler runs inside the grading command, on the machine it is started on (a
login node); each worker job runs ``python -m distributed.cli.dask_worker`` on a compute
node, connects back to it, and grades one submission at a time per slot (one, or as
many as its GPUs hold by the rubric's declared GPU memory). The settings are the
rubric's ``slurm:`` section with a marker's ``--cluster-config`` file over it
(``SlurmSettings``). What Slurm refuses (a partition or an account that does not exist,
a time limit over the partition's) is found with ``sbatch --test-only`` before any job
is queued. A worker job lost for any reason (pre-empted, its node failed, its walltime
reached) is replaced, and its submission graded again on another worker. The job logs are
written beside the results, under ``.slurm``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..course.rubric import Limits, SlurmSettings
from ..errors import UsageError
from . import gpus as gpu_pool

NAME = "slurm"
LOGS = ".slurm"  # under the results folder: the worker jobs' output
JOB_NAME = "autograder"
ALLOWED_FAILURES = 1  # a submission whose worker is lost is graded once more, elsewhere, then is the grader's error
TEST_TIMEOUT_S = 60
WAIT_NOTE_S = 60  # while no worker job has started, where they are is said this often


def load_settings(base: SlurmSettings, config: Path | None) -> SlurmSettings:
    """``base`` (the rubric's) with the ``slurm:`` section of the YAML file ``config`` over
    it, key by key; a ``UsageError`` naming the file and the key for anything wrong."""
    if config is None:
        return base
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{config}: cannot read it: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{config}: not valid YAML: {error}") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get(NAME), dict):
        raise UsageError(f"{config}: expected a 'slurm:' section of settings (queue, account, walltime, jobs, "
                         "cores, memory, gpus, ...)")
    extra = set(loaded) - {NAME}
    if extra:
        raise UsageError(f"{config}: unknown section(s) {', '.join(sorted(map(str, extra)))}; only 'slurm:' is read")
    try:
        return SlurmSettings(**{**base.model_dump(exclude_unset=True), **loaded[NAME]})
    except ValidationError as error:
        lines = [f"  slurm.{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()]
        raise UsageError(f"{config}: wrong Slurm settings:\n" + "\n".join(lines)) from None


def gradings_per_worker(settings: SlurmSettings, limits: Limits) -> int:
    """How many submissions one worker job grades at once: one without GPUs (its CPUs go to
    one kernel at a time), else as many as its GPUs hold by the rubric's need (``gpus.slots``);
    a need its GPUs cannot meet is a ``UsageError``."""
    need = gpu_pool.need_of(limits)
    if settings.gpus == 0 or need.count == 0:
        return 1
    if settings.gpu_memory_gb is None:  # the GPUs' size unknown: a whole one per grading
        need = gpu_pool.Need(None, need.count)
    memory = settings.gpu_memory_gb if settings.gpu_memory_gb is not None else math.inf
    devices = [gpu_pool.Device(str(index), memory) for index in range(settings.gpus)]
    found = gpu_pool.slots(devices, need)
    if not found:
        with_memory = f" of {settings.gpu_memory_gb:g} GB" if settings.gpu_memory_gb is not None else ""
        raise UsageError(f"each grading needs {need.describe()}, but a Slurm worker job has {settings.gpus} "
                         f"GPU(s){with_memory} (slurm.gpus / slurm.gpu_memory_gb)")
    return len(found)


def job_options(settings: SlurmSettings, *, gradings: int, log_dir: Path) -> dict[str, Any]:
    """``SLURMCluster``'s arguments for these settings."""
    if any(char in str(log_dir) for char in '"\n'):
        raise UsageError(f"{log_dir}: a results folder whose path holds a double quote or a line break cannot "
                         "take Slurm's job logs; choose another")
    # quoted: a marker's results folder may have spaces in its path
    directives = [f'--output="{log_dir}/{JOB_NAME}-%j.out"', f'--error="{log_dir}/{JOB_NAME}-%j.err"',
                  *settings.directives]
    if settings.gpus:
        directives.append(f"--gres=gpu:{settings.gpus}")
    scheduler: dict[str, Any] = {"dashboard_address": ":0"}  # a free port: no clash with another user's
    if settings.host:
        scheduler["host"] = settings.host
    return {
        "queue": settings.queue,
        "account": settings.account,
        "walltime": settings.walltime,
        "cores": gradings,  # the worker's threads: one per grading slot
        "job_cpu": settings.cores,
        "processes": 1,
        "memory": settings.memory,
        "job_name": JOB_NAME,
        "job_extra_directives": directives,
        # Dask's statistical profiler costs a few percent of every grading
        "job_script_prologue": [*settings.prologue, "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False"],
        "python": settings.python or sys.executable,
        "scheduler_options": scheduler,
    }


def check_job(script: str) -> None:
    """Ask Slurm, without queueing anything, whether it would take the worker job."""
    try:
        done = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True,
                              timeout=TEST_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Slurm did not answer 'sbatch --test-only' within {TEST_TIMEOUT_S} s: is slurmctld "
                         "running?") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise UsageError(f"Slurm refuses the worker job (check the slurm: settings): {said}\n"
                         f"the job script:\n{script}")


@contextlib.contextmanager
def slurm_client(settings: SlurmSettings, limits: Limits, jobs: int, *, out_dir: Path,
                 note: Callable[[str], None] = print) -> Iterator[Any]:
    """A Dask client whose workers are Slurm jobs, at least one of them started: as many as
    the settings say, fewer when ``jobs`` submissions need fewer. The jobs are cancelled
    when the block ends."""
    if shutil.which("sbatch") is None:
        raise UsageError("--cluster slurm needs Slurm's commands (sbatch, squeue) on this machine's PATH: run the "
                         "grader on a login node of the cluster")
    try:
        import dask
        from dask_jobqueue import SLURMCluster
        from distributed import Client
    except ImportError:
        raise UsageError("--cluster slurm needs dask-jobqueue and distributed: "
                         "pip install dask-jobqueue distributed") from None
    gradings = gradings_per_worker(settings, limits)
    workers = max(1, min(settings.jobs, math.ceil(jobs / gradings)))
    log_dir = out_dir.resolve() / LOGS
    log_dir.mkdir(parents=True, exist_ok=True)
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        cluster = SLURMCluster(**job_options(settings, gradings=gradings, log_dir=log_dir))
    try:
        check_job(cluster.job_script())
        # adapt, not scale: a job that ends (walltime, pre-emption, node failure) is replaced
        cluster.adapt(minimum=workers, maximum=workers)
        client = Client(cluster, set_as_default=False)
        try:
            where = f"partition {settings.queue}" if settings.queue else "the default partition"
            if settings.gpus == 0 and limits.gpu_memory_gb is not None and gpu_pool.need_of(limits).count:
                note(f"the rubric declares {limits.gpu_memory_gb:g} GB of GPU memory a grading, but the worker jobs "
                     "ask for no GPU (slurm.gpus): the kernels run on CPUs")
            note(f"asked Slurm for {workers} worker job(s) on {where} ({settings.cores} CPUs, "
                 f"{settings.memory}, {settings.gpus} GPU(s), {gradings} grading(s) at once each); "
                 f"their logs: {log_dir}")
            _wait_for_a_worker(client, settings.start_timeout_s, log_dir, note)
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _wait_for_a_worker(client: Any, timeout_s: float, log_dir: Path, note: Callable[[str], None]) -> None:
    """Until a worker job has started, saying every ``WAIT_NOTE_S`` where the jobs are
    (a busy queue can hold them for hours); a ``UsageError`` past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            client.wait_for_workers(1, timeout=max(0.1, min(WAIT_NOTE_S, left)))
            return
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise UsageError(f"no Slurm worker job started within {timeout_s:g} s (slurm.start_timeout_s); "
                                 f"the jobs: {queue_state(log_dir)}; their logs are in {log_dir}") from None
            note(f"waiting for a Slurm worker job to start: {queue_state(log_dir)}")


def queued_jobs(log_dir: Path) -> list[tuple[str, str, str]]:
    """(job id, state, reason) of each of this batch's worker jobs in Slurm's queue, known by
    their logs' folder (another batch's jobs share the name)."""
    done = subprocess.run(["squeue", "-h", "--name", JOB_NAME, "-O", "JobID:20,State:20,Reason:40,STDOUT:4000"],
                          capture_output=True, text=True, timeout=TEST_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise OSError(f"squeue failed: {(done.stderr or done.stdout).strip()}")
    return [(line[:20].strip(), line[20:40].strip(), line[40:80].strip()) for line in done.stdout.splitlines()
            if line[80:].strip().startswith(str(log_dir))]


def queue_state(log_dir: Path) -> str:
    """``88123 PENDING (Priority), 88124 PENDING (Resources)``: ``queued_jobs``, said."""
    try:
        jobs = queued_jobs(log_dir)
    except (OSError, subprocess.SubprocessError) as error:
        return f"({error})"
    return ", ".join(f"{job} {state} ({reason})" for job, state, reason in jobs) or "none in the queue"
