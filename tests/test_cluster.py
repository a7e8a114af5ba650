"""Grading on a Dask cluster (``grade --cluster``): a real scheduler and two workers on this
machine, as subprocesses. The grades equal the local pool's; a worker killed mid-submission
has its job graded again on the other worker, once, from a clean folder."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder.course.assignment import load_assignment
from autograder.errors import UsageError
from autograder.grading.pipeline import GradeOptions
from autograder.grading.report import ERROR_FILE, GRADE_FILE, load_grade
from autograder.marking.batch import BatchEntry, grade_batch
from autograder.marking.cluster import SCRATCH, cluster_address
from autograder.sandboxes.sandbox import LocalSandbox

from .batches import SLOW, WRONG, Recorder, assert_complete, assert_lost_once, download, local_dask, totals
from .conftest import TRIVIAL, TRIVIAL_CELLS, run_cli

distributed = pytest.importorskip("distributed", reason="grading on a cluster needs Dask's 'distributed' package")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two one-thread workers on this machine, without a nanny (a killed
    worker stays dead); a lost job is run once more."""
    with local_dask(tmp_path, 2, {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}) as address:
        yield address


def test_a_moodle_batch_on_a_cluster_gets_the_grades_of_the_local_pool(tmp_path: Path, cluster: str):
    batch = download(tmp_path, TRIVIAL_CELLS, WRONG, TRIVIAL_CELLS, WRONG)
    assignment = load_assignment(TRIVIAL)
    local = grade_batch(assignment, [batch], out_dir=tmp_path / "local", workers=2, sandbox=LocalSandbox(),
                        options=GradeOptions(gpus="none"))
    recorder = Recorder()
    remote = grade_batch(assignment, [batch], out_dir=tmp_path / "remote", cluster=cluster, sandbox=LocalSandbox(),
                         options=GradeOptions(gpus="none"), events=recorder)
    assert [e.status for e in remote] == ["graded"] * 4
    assert totals(remote) == totals(local)
    assert len({tuple(t.items()) for t in totals(remote).values()}) == 2  # the wrong ones lost points
    assert sorted(e.id for e in recorder.started) == sorted(recorder.done_ids) == sorted(totals(remote))
    assert all(e.worker.startswith("tcp://127.0.0.1:") for e in recorder.started)  # where each one ran
    assert_complete(tmp_path / "remote", list(totals(remote)))
    assert not (tmp_path / "remote" / SCRATCH).exists()
    # a result left half-written (no grade.json, a stray file) is graded again from a clean folder, by the command
    half = sorted(totals(remote))[1]
    (tmp_path / "remote" / half / GRADE_FILE).unlink()
    (tmp_path / "remote" / half / "stray.txt").write_text("from a lost worker", encoding="utf-8")
    done = run_cli("grade", TRIVIAL, batch, "-o", tmp_path / "remote", "--cluster", cluster.replace("tcp", "dask"),
                   "--sandbox", "local")
    assert done.returncode == 0, done.stderr
    assert_complete(tmp_path / "remote", list(totals(remote)))
    assert not (tmp_path / "remote" / half / "stray.txt").exists()
    assert load_grade(tmp_path / "remote" / half).totals() == totals(remote)[half]

def test_a_worker_killed_mid_submission_has_it_graded_again_elsewhere_once(tmp_path: Path, cluster: str):
    batch = download(tmp_path, (SLOW, *TRIVIAL_CELLS), TRIVIAL_CELLS, WRONG, TRIVIAL_CELLS)
    slow = "Student_00_100"
    with distributed.Client(cluster, timeout="10s") as client:
        pids: dict[str, int] = client.run(os.getpid)
    killed: list[tuple[str, float]] = []

    class Killer(Recorder):
        def start(self, entry: BatchEntry) -> None:
            super().start(entry)
            if entry.id == slow and not killed:  # SIGKILL its worker while the notebook sleeps
                address = entry.worker.split(" ")[0]
                killed.append((address, time.time()))
                threading.Timer(1.5, os.kill, (pids[address], signal.SIGKILL)).start()

    recorder = Killer()
    entries = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=tmp_path / "out", cluster=cluster,
                          sandbox=LocalSandbox(), options=GradeOptions(gpus="none"), events=recorder)
    assert killed, "the slow submission never started"
    # the slow one started twice (the killed worker, then the other), every other once; each finished once
    graded = assert_lost_once(entries, recorder, slow, like="Student_01_101")
    assert {e.worker.split(" ")[0] for e in recorder.started if e.id == slow} == set(pids)  # one try on each
    assert_complete(tmp_path / "out", list(graded))
    when = json.loads((tmp_path / "out" / slow / GRADE_FILE).read_text(encoding="utf-8"))["graded_at"]
    assert when >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(killed[0][1]))  # by the second try


def test_a_cluster_address_is_checked_and_excludes_workers(tmp_path: Path):
    assert cluster_address("dask://node1:8786") == "tcp://node1:8786"
    assert cluster_address("tcp://10.0.0.2:8786") == "tcp://10.0.0.2:8786"
    assert cluster_address("slurm") == "slurm"
    for bad in ("node1:8786", "dask://node1", "http://node1:8786", "slurm://x"):
        with pytest.raises(UsageError, match="dask://HOST:PORT"):
            cluster_address(bad)
    with pytest.raises(UsageError, match="not both"):
        grade_batch(load_assignment(TRIVIAL), [tmp_path], out_dir=tmp_path / "out", workers=2,
                    cluster="dask://127.0.0.1:1")
    result = run_cli("grade", TRIVIAL, str(tmp_path), "-j", "2", "--cluster", "dask://127.0.0.1:1")
    assert result.returncode != 0 and "-j and --cluster exclude each other" in result.stderr


def test_workers_that_do_not_see_the_results_folder_are_named(tmp_path: Path, cluster: str):
    from autograder.marking.cluster import check_workers

    with distributed.Client(cluster, timeout="10s") as client:
        with pytest.raises(UsageError) as refused:
            check_workers(client, writable=tmp_path / "nowhere", shared=[tmp_path, tmp_path / "gone"])
        workers = set(client.scheduler_info()["workers"])
    text = str(refused.value)
    assert "2 of the cluster's 2 worker(s)" in text and all(worker in text for worker in workers)
    assert f"{tmp_path / 'gone'} (not found)" in text and f"{tmp_path / 'nowhere'} (cannot write" in text


def test_a_submission_whose_workers_all_die_is_the_graders_error(tmp_path: Path, cluster: str):
    batch = download(tmp_path, (SLOW, *TRIVIAL_CELLS))
    with distributed.Client(cluster, timeout="10s") as client:
        pids: dict[str, int] = client.run(os.getpid)

    class Killer(Recorder):  # every worker that starts it dies: the scheduler allows one loss, not two
        def start(self, entry: BatchEntry) -> None:
            super().start(entry)
            threading.Timer(1.5, os.kill, (pids[entry.worker.split(" ")[0]], signal.SIGKILL)).start()

    recorder = Killer()
    [entry] = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=tmp_path / "out", cluster=cluster,
                          sandbox=LocalSandbox(), options=GradeOptions(gpus="none"), events=recorder)
    assert len(recorder.started) == 2
    assert entry.status == "error" and "the Dask workers grading it died" in entry.message
    assert "not the student's" in entry.message
    folder = tmp_path / "out" / entry.id
    assert (folder / ERROR_FILE).exists() and not (folder / GRADE_FILE).exists()  # graded again by the next run


def test_progress_says_where_each_submission_runs_on_a_cluster():
    import io

    from rich.console import Console

    from autograder.marking.batch import EntryStatus
    from autograder.marking.progress import LogEvents, place

    console = Console(file=io.StringIO(), width=200)
    events = LogEvents(console, "grading trivial", every=3600)
    events.begin(3, 3)
    here = BatchEntry("alice", Path("a"), EntryStatus.RUNNING)
    there = BatchEntry("bob", Path("b"), EntryStatus.RUNNING, worker="tcp://10.0.0.7:4242 (node7, Slurm job 88123)")
    assert place(here) == "" and place(there) == "node7, Slurm job 88123"
    events.start(here)
    events.start(there)
    assert "2 running (alice, bob on node7, Slurm job 88123)" in events.status()
    events.start(there)  # its worker was lost and it started again elsewhere: still one of the running
    assert "2 running" in events.status()
    there.status, there.totals, there.seconds = EntryStatus.GRADED, {"auto_points": 7.0, "auto_max": 9.0}, 2.5
    events.done(there)
    events.close()
    assert "✓ bob: 7 / 9 automatic (2.5 s on node7, Slurm job 88123)" in console.file.getvalue()
