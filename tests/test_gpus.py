"""GPUs as a resource: the machine's inventory, and jobs packed on it by their declared memory."""

from __future__ import annotations

import math
import os
import stat
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.course.rubric import Limits, parse_rubric
from autograder.errors import RubricError, UsageError
from autograder.marking.gpus import (
    Device,
    Need,
    Packing,
    check_fits,
    inventory,
    need_of,
    pack,
    parse_environment,
    slots,
)

from .test_rubric import GOOD

TWO_80 = [Device("0", 80.0), Device("1", 80.0)]


def _check(devices: Sequence[Device], jobs: list[tuple[str, Need]], packing: Packing,
           running: dict[str, tuple[Need, tuple[str, ...]]] | None = None) -> None:
    """The invariants of any packing: each job placed once or waiting, the right number of
    devices, no device over its memory, whole-device jobs alone."""
    needs = dict(jobs)
    assert sorted([*packing.assigned, *packing.waiting]) == sorted(needs)
    assert not set(packing.assigned) & set(packing.waiting)
    placed = {**(running or {}), **{name: (needs[name], indices) for name, indices in packing.assigned.items()}}
    memory: dict[str, float] = defaultdict(float)
    holders: dict[str, list[str]] = defaultdict(list)
    for name, (need, indices) in placed.items():
        assert len(indices) == need.count and len(set(indices)) == need.count
        for index in indices:
            holders[index].append(name)
            memory[index] += 0.0 if need.whole else need.memory_gb or 0.0
    capacity = {d.index: d.memory_gb for d in devices}
    for index, names in holders.items():
        assert memory[index] <= capacity[index] + 1e-6, f"GPU {index} over its memory: {names}"
        if any(placed[name][0].whole for name in names):
            assert len(names) == 1, f"GPU {index} shares a whole-device job: {names}"


def test_small_and_large_jobs_share_two_80_gb_gpus_without_overcommitting():
    jobs = [("a", Need(2)), ("b", Need(20)), ("c", Need(70))]
    packing = pack(TWO_80, jobs)
    _check(TWO_80, jobs, packing)
    assert set(packing.assigned) == {"a", "b", "c"} and packing.waiting == []
    # first-fit decreasing: the 70 first on GPU 0, the 20 beside it does not fit (90), the 2 does (72)
    assert packing.assigned == {"c": ("0",), "b": ("1",), "a": ("0",)}


def test_many_20_gb_jobs_on_two_80_gb_gpus_run_8_at_once_and_the_rest_wait():
    jobs = [(f"s{i:02}", Need(20)) for i in range(11)]
    packing = pack(TWO_80, jobs)
    _check(TWO_80, jobs, packing)
    assert list(packing.assigned) == [f"s{i:02}" for i in range(8)]  # in the order given
    assert packing.waiting == ["s08", "s09", "s10"]
    assert sorted(packing.assigned.values()).count(("0",)) == 4


def test_a_scheduler_packs_what_waits_around_the_jobs_still_running():
    running = {f"s{i}": (Need(20), ("0" if i < 4 else "1",)) for i in range(7)}  # GPU 1 has 20 GB left
    jobs = [("big", Need(30)), ("next", Need(20))]
    packing = pack(TWO_80, jobs, running=running)
    _check(TWO_80, jobs, packing, running)
    assert packing.assigned == {"next": ("1",)} and packing.waiting == ["big"]


def test_a_job_larger_than_every_gpu_is_refused_by_name():
    with pytest.raises(UsageError, match=r"job 'huge' needs 90 GB of GPU memory, but this machine has "
                                         r"GPU 0 \(80.0 GB\), GPU 1 \(80.0 GB\)"):
        pack(TWO_80, [("small", Need(10)), ("huge", Need(90))])
    with pytest.raises(UsageError, match="job 'three' needs 3 whole GPUs"):
        pack(TWO_80, [("three", Need(None, 3))])
    with pytest.raises(UsageError, match="needs a whole GPU, but this machine has no GPU"):
        pack([], [("x", Need())])
    with pytest.raises(UsageError, match="'ece4179' needs 2 whole GPUs of at least 50 GB each"):
        check_fits([Device("0", 80), Device("1", 40)], "ece4179", Need(50, 2))
    check_fits([], "cpu", Need(None, 0))


def test_whole_gpu_jobs_get_one_device_each():
    jobs = [("a", Need()), ("b", Need()), ("c", Need()), ("small", Need(1))]
    packing = pack(TWO_80, jobs)
    _check(TWO_80, jobs, packing)
    assert packing.assigned == {"a": ("0",), "b": ("1",)}
    assert packing.waiting == ["c", "small"]  # not even 1 GB beside a whole-GPU job


def test_a_two_gpu_job_takes_two_free_devices_and_cpu_jobs_take_none():
    jobs = [("small", Need(5)), ("pair", Need(None, 2)), ("cpu", Need(None, 0))]
    packing = pack(TWO_80, jobs)
    _check(TWO_80, jobs, packing)
    assert packing.assigned == {"pair": ("0", "1"), "cpu": ()}
    assert packing.waiting == ["small"]
    assert pack(TWO_80, [("pair", Need(None, 2))], running={"s": (Need(5), ("1",))}).waiting == ["pair"]


def test_slots_for_a_pool_of_identical_jobs():
    assert slots(TWO_80, Need(20)) == [("0",), ("1",)] * 4  # 8 slots, 4 per device, alternating
    assert slots(TWO_80, Need(30)) == [("0",), ("1",)] * 2
    assert slots(TWO_80, Need()) == [("0",), ("1",)]
    assert slots(TWO_80, Need(None, 0)) == []
    assert slots(TWO_80, Need(90)) == []
    assert slots([Device("0", 80), Device("1", 40)], Need(20)) == [("0",), ("1",), ("0",), ("1",), ("0",), ("0",)]
    four = [Device(str(i), 80) for i in range(5)]
    assert slots(four, Need(None, 2)) == [("0", "1"), ("2", "3")]
    assert slots([Device("0", 0.3)], Need(0.1)) == [("0",)] * 3  # 0.3 / 0.1 is 2.999... in floating point


def test_inventory_reads_the_environment_first():
    assert inventory({"AUTOGRADER_GPUS": "80,40.5"}) == [Device("0", 80.0), Device("1", 40.5)]
    assert inventory({"AUTOGRADER_GPUS": ""}) == [] == inventory({"AUTOGRADER_GPUS": "None"})
    for bad in ("80,,80", "0", "lots", "nan", "-1"):
        with pytest.raises(UsageError, match="AUTOGRADER_GPUS"):
            parse_environment(bad)


def _fake_nvidia_smi(folder: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("AUTOGRADER_GPUS", raising=False)


def test_inventory_asks_nvidia_smi(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, r'printf "0, 81559\n1, 81559\n"', monkeypatch)
    devices = inventory()
    assert [d.index for d in devices] == ["0", "1"]
    assert all(abs(d.memory_gb - 81559 * 2**20 / 1e9) < 1e-9 for d in devices)  # 85.5 GB
    assert len(slots(devices, Need(20))) == 8  # an "80 GB" card holds four 20 GB jobs


def test_inventory_without_a_working_nvidia_smi_finds_no_gpu(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, 'echo "NVIDIA-SMI has failed" >&2; exit 9', monkeypatch)
    assert inventory() == []
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert inventory() == []


def test_the_rubric_declares_the_need():
    assert need_of(Limits()) == Need(None, 1)  # a whole GPU, as before
    assert need_of(Limits(gpu_memory_gb=20)) == Need(20, 1)
    assert need_of(Limits(gpu_count=2)) == Need(None, 2)
    assert need_of(Limits(gpu_count=0)) == Need(None, 0)
    assert need_of(Limits(gpus="none", gpu_memory_gb=20)) == Need(None, 0)


@pytest.mark.parametrize(("limits", "problem"), [
    ({"gpu_memory_gb": 0}, "gpu_memory_gb"),
    ({"gpu_count": -1}, "gpu_count"),
    ({"gpu_count": 0, "gpu_memory_gb": 4}, "a CPU-only grading needs no GPU memory"),
])
def test_the_rubric_refuses_impossible_needs(limits, problem):
    with pytest.raises(RubricError, match=problem) as caught:
        parse_rubric({**GOOD, "limits": limits}, "rubric.yaml")
    assert "limits" in str(caught.value)


SIZES = st.sampled_from([16.0, 24.0, 40.0, 80.0, 85.52])


@st.composite
def machines_and_jobs(draw: st.DrawFn) -> tuple[list[Device], list[tuple[str, Need]]]:
    """A machine of 1 to 4 GPUs and up to 12 jobs that each fit it when it is free."""
    devices = [Device(str(i), size) for i, size in enumerate(draw(st.lists(SIZES, min_size=1, max_size=4)))]
    largest = max(d.memory_gb for d in devices)
    needs = st.one_of(
        st.builds(Need, st.floats(0.1, largest), st.just(1)),
        st.builds(Need, st.none(), st.integers(0, len(devices))),
        st.builds(Need, st.floats(1, min(d.memory_gb for d in devices)), st.integers(1, len(devices)).map(
            lambda count: max(count, 2) if len(devices) > 1 else 1)),
    )
    return devices, [(f"j{i}", need) for i, need in enumerate(draw(st.lists(needs, max_size=12)))]


@settings(max_examples=200, deadline=None)
@given(machines_and_jobs())
def test_pack_never_overcommits_nor_places_a_job_twice(case):
    devices, jobs = case
    packing = pack(devices, jobs)
    _check(devices, jobs, packing)
    if jobs:
        assert packing.assigned  # the first job in packing order always fits a free machine
    # the next round: what waited, around what is still running
    running = {name: (dict(jobs)[name], indices) for name, indices in packing.assigned.items()}
    later = [(name, need) for name, need in jobs if name in packing.waiting]
    again = pack(devices, later, running=running)
    _check(devices, later, again, running)


# -- the local pool: workers and the devices each one's kernels see


def test_the_local_pool_packs_workers_onto_gpus_by_the_rubrics_declared_memory(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path):
    from autograder.course.assignment import load_assignment
    from autograder.grading.pipeline import GradeOptions
    from autograder.marking.batch import _gpus_per_worker, default_workers

    from .conftest import trivial_copy

    def copy(name: str, extra: str = ""):
        folder = trivial_copy(tmp_path / name)
        rubric = folder / "rubric.yaml"
        rubric.write_text(rubric.read_text(encoding="utf-8").replace("limits:\n", f"limits:\n{extra}", 1),
                          encoding="utf-8")
        return load_assignment(folder)

    monkeypatch.setenv("AUTOGRADER_GPUS", "80,80")
    shared, whole, cpu = copy("shared", "  gpu_memory_gb: 20\n"), copy("whole"), copy("cpu", "  gpu_count: 0\n")
    assert default_workers(shared.rubric.limits) == 8 and default_workers(whole.rubric.limits) == 2
    assert default_workers(cpu.rubric.limits) == 1
    seen = _gpus_per_worker(shared, GradeOptions(), 8)
    assert sorted(seen) == ["0"] * 4 + ["1"] * 4  # four 20 GB gradings on each 80 GB device, never five
    assert _gpus_per_worker(whole, GradeOptions(), 3) == ["0", "1", "0"]  # -j above the GPUs: as before
    assert _gpus_per_worker(cpu, GradeOptions(), 2) == [None, None]
    assert _gpus_per_worker(shared, GradeOptions(gpus="none"), 2) == [None, None]  # the run's choice wins
    too_big = copy("big", "  gpu_memory_gb: 90\n")
    with pytest.raises(UsageError, match="needs 90 GB of GPU memory"):
        default_workers(too_big.rubric.limits)
    monkeypatch.setenv("AUTOGRADER_GPUS", "none")
    assert default_workers(shared.rubric.limits) == 1 and _gpus_per_worker(shared, GradeOptions(), 1) == [None]


# -- a Dask cluster's workers: each shares out its own GPUs among the gradings it runs


def test_a_cluster_worker_shares_its_gpus_among_its_gradings_and_one_that_cannot_is_named(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    distributed = pytest.importorskip("distributed")
    from autograder.course.assignment import load_assignment
    from autograder.grading.pipeline import GradeOptions
    from autograder.marking.cluster import _gpu_slots, _slots_for, check_gpus

    from .conftest import trivial_copy

    def copy(name: str, extra: str):
        folder = trivial_copy(tmp_path / name)
        rubric = folder / "rubric.yaml"
        rubric.write_text(rubric.read_text(encoding="utf-8").replace("limits:\n", f"limits:\n{extra}", 1),
                          encoding="utf-8")
        return load_assignment(folder)

    monkeypatch.setenv("AUTOGRADER_GPUS", "80,80")  # what each worker of this machine finds
    shared, big = copy("shared", "  gpu_memory_gb: 20\n"), copy("big", "  gpu_memory_gb: 90\n")
    assert sorted(_slots_for(shared.rubric.limits, GradeOptions()) or []) == ["0"] * 4 + ["1"] * 4
    assert _slots_for(shared.rubric.limits, GradeOptions(gpus="none")) is None  # the run's choice wins
    pool = _gpu_slots(str(shared.folder), "run-1", shared, GradeOptions())
    assert pool is not None
    taken = [pool.get_nowait() for _ in range(8)]
    assert sorted(taken) == ["0"] * 4 + ["1"] * 4 and pool.empty()  # a ninth grading waits for one to end
    pool.put(taken[0])
    assert _gpu_slots(str(shared.folder), "run-1", shared, GradeOptions()) is pool  # one pool per batch
    with distributed.LocalCluster(n_workers=1, threads_per_worker=10, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc, set_as_default=False) as client:
        notes: list[str] = []
        check_gpus(client, shared, GradeOptions(), note=notes.append)
        assert len(notes) == 1 and "runs 10 threads but its GPUs hold 8 grading(s)" in notes[0]
        with pytest.raises(UsageError, match="(?s)1 of the cluster's 1 worker.*needs 90 GB of GPU memory"):
            check_gpus(client, big, GradeOptions(), note=notes.append)
        check_gpus(client, big, GradeOptions(gpus="none"), note=notes.append)  # no GPU asked: nothing to refuse


def test_inside_a_slurm_job_only_its_gpus_are_shared_out():
    from autograder.marking.gpus import allocated

    node = [Device("0", 80.0), Device("1", 80.0), Device("2", 40.0), Device("3", 40.0)]
    job = {"SLURM_JOB_ID": "88123", "CUDA_VISIBLE_DEVICES": "2,3"}
    assert allocated(node, {}) == node  # not in a Slurm job: the machine's
    assert allocated(node, {"SLURM_JOB_ID": "1"}) == node  # a job given no GPU setting at all
    assert allocated(node, job) == [Device("2", 40.0), Device("3", 40.0)]  # the node's others are not ours
    # cgroups hide the others and nvidia-smi numbers the visible ones from 0: matched by position
    assert allocated([Device("0", 40.0), Device("1", 40.0)], {**job, "CUDA_VISIBLE_DEVICES": "0,1"}) == [
        Device("0", 40.0), Device("1", 40.0)]
    assert allocated([Device("0", 80.0)], {**job, "CUDA_VISIBLE_DEVICES": "3"}) == [Device("3", 80.0)]
    assert allocated([], job) == [Device("2", math.inf), Device("3", math.inf)]  # no nvidia-smi: whole GPUs
    assert allocated(node, {**job, "CUDA_VISIBLE_DEVICES": ""}) == []  # a job without GPUs
    assert slots(allocated(node, job), Need(20.0)) == [("2",), ("3",), ("2",), ("3",)]
