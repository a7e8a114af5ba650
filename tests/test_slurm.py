"""Grading on Slurm (``grade --cluster slurm``): worker jobs queued with ``sbatch`` through
dask-jobqueue on a real one-node Slurm (``.ci/slurm-up`` starts slurmctld, slurmd and
munge on this machine). The grades equal the local pool's; a worker job cancelled
mid-submission is replaced and its submission graded again, once; what Slurm refuses is
said before any job is queued. The settings, their merging and the GPU slots of a
worker job need no Slurm.

The Slurm tests skip on a machine without a running Slurm, except where
``AUTOGRADER_REQUIRE_SLURM=1`` (set by ``.ci/run``): there a missing Slurm fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from autograder.course.assignment import load_assignment
from autograder.course.rubric import Limits, SlurmSettings
from autograder.errors import UsageError
from autograder.grading.pipeline import GradeOptions
from autograder.grading.report import GRADE_FILE, load_grade
from autograder.marking.batch import BatchEntry, grade_batch
from autograder.marking.slurm import JOB_NAME, LOGS, gradings_per_worker, job_options, load_settings, queued_jobs
from autograder.sandboxes.sandbox import LocalSandbox

from .batches import SLOW, WRONG, Recorder, assert_complete, assert_lost_once, download
from .conftest import TRIVIAL, TRIVIAL_CELLS, run_cli

pytest.importorskip("dask_jobqueue", reason="grading on Slurm needs dask-jobqueue")

# two one-CPU worker jobs, the scheduler on loopback (one node), a short wait for them
CONFIG = """\
slurm:
  jobs: 2
  cores: 1
  memory: 1GB
  walltime: "00:20:00"
  host: 127.0.0.1
  start_timeout_s: 180
"""


def _slurm_problem() -> str:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm's commands (sinfo, sbatch) are not installed"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 30 s"
    states = done.stdout.split()
    if done.returncode != 0 or not any(state in ("idle", "mixed", "allocated") for state in states):
        return f"no Slurm node is up: {(done.stderr or done.stdout).strip() or 'no node'}"
    return ""


@pytest.fixture
def slurm(tmp_path: Path) -> Path:
    """The config file of a running Slurm's worker jobs; a skip (a failure in CI) without one."""
    problem = _slurm_problem()
    if problem:
        if os.environ.get("AUTOGRADER_REQUIRE_SLURM") == "1":
            pytest.fail(f"AUTOGRADER_REQUIRE_SLURM=1 but Slurm cannot be used: {problem} (.ci/slurm-up starts it)")
        pytest.skip(f"no Slurm here ({problem}); .ci/slurm-up starts a one-node one")
    config = tmp_path / "cluster.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def _jobs_of(out: Path) -> list[str]:
    """The queued or running Slurm jobs of the batch graded into ``out`` (tests running at
    once queue jobs of the same name)."""
    return [job for job, _, _ in queued_jobs((out / LOGS).resolve())]


def _no_jobs_left(out: Path) -> list[str]:
    deadline = time.monotonic() + 30  # cancelled jobs leave the queue within seconds
    while (left := _jobs_of(out)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_a_moodle_batch_on_slurm_gets_the_grades_of_the_local_pool(tmp_path: Path, slurm: Path):
    batch = download(tmp_path, TRIVIAL_CELLS, WRONG, TRIVIAL_CELLS, WRONG)
    local = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=tmp_path / "local", workers=2,
                        sandbox=LocalSandbox(), options=GradeOptions(gpus="none"))
    out = tmp_path / "results on slurm"  # a space in the path: the job logs are still written
    done = run_cli("grade", TRIVIAL, batch, "-o", out, "--cluster", "slurm", "--cluster-config", slurm,
                   "--sandbox", "local", "--gpus", "none")
    assert done.returncode == 0, done.stdout + done.stderr
    graded = {entry.id: entry.totals for entry in local}
    assert {name: load_grade(out / name).totals() for name in graded} == graded
    assert len({tuple(t.items()) for t in graded.values()}) == 2  # the wrong ones lost points
    assert_complete(out, list(graded), also=(LOGS,))
    # the workers were Slurm jobs, started with sbatch: their logs are beside the results, and each
    # finished submission says which job graded it
    jobs = {path.stem.removeprefix(f"{JOB_NAME}-") for path in (out / LOGS).glob(f"{JOB_NAME}-*.err")}
    assert len(jobs) == 2 and all(job.isdigit() for job in jobs), sorted((out / LOGS).iterdir())
    ran_on = {line.rsplit("Slurm job ", 1)[1].split(")")[0] for line in done.stdout.splitlines()
              if line.startswith("✓") and "Slurm job " in line}
    assert ran_on and ran_on <= jobs, done.stdout
    assert "asked Slurm for 2 worker job(s)" in done.stdout
    assert _no_jobs_left(out) == []  # the command cancels its worker jobs when it ends
    # a rerun resumes: nothing is graded again, and no job is queued for it
    logs = sorted((out / LOGS).iterdir())
    again = run_cli("grade", TRIVIAL, batch, "-o", out, "--cluster", "slurm", "--cluster-config", slurm,
                    "--sandbox", "local", "--gpus", "none")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 of 4 submissions already graded" in again.stdout
    assert sorted((out / LOGS).iterdir()) == logs and "asked Slurm" not in again.stdout
    # one left half-written (a lost job's): graded again from a clean folder, on one worker job, not two
    half = sorted(graded)[1]
    (out / half / GRADE_FILE).unlink()
    (out / half / "stray.txt").write_text("from a lost job", encoding="utf-8")
    third = run_cli("grade", TRIVIAL, batch, "-o", out, "--cluster", "slurm", "--cluster-config", slurm,
                    "--sandbox", "local", "--gpus", "none")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "asked Slurm for 1 worker job(s)" in third.stdout and "3 of 4 submissions already graded" in third.stdout
    assert load_grade(out / half).totals() == graded[half] and not (out / half / "stray.txt").exists()


def test_a_worker_job_cancelled_mid_submission_is_replaced_and_the_submission_graded_again(
        tmp_path: Path, slurm: Path):
    batch = download(tmp_path, (SLOW, *TRIVIAL_CELLS), TRIVIAL_CELLS, WRONG)
    slow = "Student_00_100"
    cancelled: list[tuple[str, float]] = []

    class Canceller(Recorder):  # scancel the job grading the slow one while its notebook sleeps
        def start(self, entry: BatchEntry) -> None:
            super().start(entry)
            if entry.id == slow and not cancelled:
                job = entry.worker.rsplit("Slurm job ", 1)[1].rstrip(")")
                cancelled.append((job, time.time()))
                threading.Timer(1.5, subprocess.run, (["scancel", job],)).start()

    recorder = Canceller()
    entries = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=tmp_path / "out", cluster="slurm",
                          cluster_config=slurm, sandbox=LocalSandbox(), options=GradeOptions(gpus="none"),
                          events=recorder)
    assert cancelled, "the slow submission never started"
    graded = assert_lost_once(entries, recorder, slow, like="Student_01_101")
    second = [e.worker for e in recorder.started if e.id == slow][1]
    assert f"Slurm job {cancelled[0][0]})" not in second  # graded again by another job
    assert_complete(tmp_path / "out", list(graded), also=(LOGS,))
    when = json.loads((tmp_path / "out" / slow / GRADE_FILE).read_text(encoding="utf-8"))["graded_at"]
    assert when >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cancelled[0][1]))
    assert _no_jobs_left(tmp_path / "out") == []


def test_what_slurm_refuses_is_said_before_any_job_is_queued(tmp_path: Path, slurm: Path):
    slurm.write_text(CONFIG + "  queue: no-such-partition\n", encoding="utf-8")
    batch = download(tmp_path, TRIVIAL_CELLS)
    with pytest.raises(UsageError, match="Slurm refuses the worker job") as refused:
        grade_batch(load_assignment(TRIVIAL), [batch], out_dir=tmp_path / "out", cluster="slurm",
                    cluster_config=slurm, sandbox=LocalSandbox(), options=GradeOptions(gpus="none"))
    assert "invalid partition" in str(refused.value).lower() and "#SBATCH -p no-such-partition" in str(refused.value)
    assert _jobs_of(tmp_path / "out") == []
    assert not (tmp_path / "out" / "Student_00_100").exists()


def test_jobs_that_never_start_are_reported_while_waiting_then_given_up(tmp_path: Path, slurm: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    from autograder.marking import slurm as slurm_module

    monkeypatch.setattr(slurm_module, "WAIT_NOTE_S", 1.0)
    # jobs Slurm holds back for an hour, as a busy queue would
    held = CONFIG.replace("start_timeout_s: 180", "start_timeout_s: 4") + "  directives: [--begin=now+3600]\n"
    slurm.write_text(held, encoding="utf-8")
    recorder = Recorder()
    with pytest.raises(UsageError, match="no Slurm worker job started within 4 s") as refused:
        grade_batch(load_assignment(TRIVIAL), [download(tmp_path, TRIVIAL_CELLS)], out_dir=tmp_path / "out",
                    cluster="slurm", cluster_config=slurm, sandbox=LocalSandbox(), options=GradeOptions(gpus="none"),
                    events=recorder)
    assert "PENDING (BeginTime)" in str(refused.value) and str(tmp_path / "out" / LOGS) in str(refused.value)
    waiting = [text for text in recorder.notes if text.startswith("waiting for a Slurm worker job to start: ")]
    assert waiting and "PENDING (BeginTime)" in waiting[0], recorder.notes
    assert _no_jobs_left(tmp_path / "out") == []  # given up: its jobs are cancelled, not left in the queue


# -- without Slurm


def test_a_config_file_overrides_the_rubrics_settings_key_by_key(tmp_path: Path):
    rubric = SlurmSettings(queue="gpu", account="course", gpus=1)
    config = tmp_path / "cluster.yaml"
    config.write_text("slurm:\n  queue: a100\n  walltime: '02:00:00'\n  prologue: [module load cuda]\n",
                      encoding="utf-8")
    merged = load_settings(rubric, config)
    assert (merged.queue, merged.account, merged.gpus, merged.walltime) == ("a100", "course", 1, "02:00:00")
    assert merged.prologue == ["module load cuda"] and merged.cores == SlurmSettings().cores
    assert load_settings(rubric, None) is rubric
    for text, says in [("slurm:\n  walltime: ten minutes\n", "slurm.walltime"),
                       ("slurm:\n  gpu: 2\n", "slurm.gpu"),
                       ("queue: a100\n", "expected a 'slurm:' section"),
                       ("slurm: {}\nextra: 1\n", "unknown section(s) extra"),
                       ("slurm: [\n", "not valid YAML")]:
        config.write_text(text, encoding="utf-8")
        with pytest.raises(UsageError, match="cluster.yaml") as refused:
            load_settings(rubric, config)
        assert says in str(refused.value), str(refused.value)
    result = run_cli("grade", TRIVIAL, str(tmp_path), "--cluster-config", str(config))
    assert result.returncode != 0 and "--cluster-config is read with --cluster slurm only" in result.stderr


def test_a_worker_job_grades_as_many_at_once_as_its_gpus_hold():
    two_80 = SlurmSettings(gpus=2, gpu_memory_gb=80)
    assert gradings_per_worker(SlurmSettings(), Limits()) == 1  # no GPU: one kernel has the job's CPUs
    assert gradings_per_worker(two_80, Limits(gpu_memory_gb=20)) == 8
    assert gradings_per_worker(two_80, Limits(gpu_memory_gb=70)) == 2
    assert gradings_per_worker(two_80, Limits()) == 2  # no memory declared: a whole GPU each
    assert gradings_per_worker(two_80, Limits(gpu_count=2)) == 1
    assert gradings_per_worker(two_80, Limits(gpu_count=0)) == 1  # CPU-only work
    assert gradings_per_worker(SlurmSettings(gpus=1), Limits(gpu_memory_gb=20)) == 1  # the GPU's size unknown
    with pytest.raises(UsageError, match="needs .*90.* a Slurm worker job has 2 GPU"):
        gradings_per_worker(two_80, Limits(gpu_memory_gb=90))
    with pytest.raises(UsageError, match="a Slurm worker job has 2 GPU"):
        gradings_per_worker(two_80, Limits(gpu_count=3))


def test_the_worker_job_asks_slurm_for_what_the_settings_say(tmp_path: Path):
    from dask_jobqueue.slurm import SLURMJob

    tmp_path = tmp_path / "results of week 3"

    settings = SlurmSettings(queue="gpu", account="course", walltime="02:00:00", cores=8, memory="32GB", gpus=2,
                             gpu_memory_gb=80, python="/opt/grader/bin/python", directives=["--qos=normal"],
                             prologue=["module load cuda"])
    options = job_options(settings, gradings=8, log_dir=tmp_path)  # a path with a space in it
    script = SLURMJob(scheduler="tcp://127.0.0.1:8786", name="w", **{
        key: value for key, value in options.items() if key != "scheduler_options"}).job_script()
    for line in ("#SBATCH -p gpu", "#SBATCH -A course", "#SBATCH -t 02:00:00", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=30G", "#SBATCH --gres=gpu:2", "#SBATCH --qos=normal", f"#SBATCH -J {JOB_NAME}",
                 f'#SBATCH --output="{tmp_path}/{JOB_NAME}-%j.out"', "module load cuda",
                 "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False"):
        assert line in script.splitlines(), (line, script)
    command = script.splitlines()[-1]
    assert command.startswith("/opt/grader/bin/python -m distributed.cli.dask_worker tcp://127.0.0.1:8786")
    assert "--nthreads 8" in command  # one thread per grading slot
