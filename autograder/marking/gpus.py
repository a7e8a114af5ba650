"""GPUs as a resource of the batch: what the machine has, what a grading needs, who goes where.

A rubric declares what one grading needs from the GPUs (``limits.gpu_memory_gb``,
``limits.gpu_count``, see ``autograder.course.rubric.Limits``); this module turns that
into placements, and nothing here starts a process:

- ``inventory()``: the machine's GPUs and their total memory; ``allocated()``: those of
  the Slurm job the grader runs in, if any.
- ``need_of(limits)``: a rubric's ``Need``.
- ``slots(devices, need)``: the workers a local pool runs when every job has the same
  need (one batch grades one assignment): each slot is the devices its kernel sees.
- ``check_fits(devices, name, need)``: a ``UsageError`` for a need no device can meet.
- ``pack(devices, jobs)``: the placement of jobs whose needs differ, first-fit decreasing
  by memory, for a scheduler that hands out devices round after round.

The rules, in both: memory is the unit of packing. Several jobs share a device while their
declared memory fits in its total (never more); a job declaring no memory has its device
to itself; a job needing k > 1 GPUs gets k whole devices no other job uses. Each job sees
only its devices: the kernel's ``CUDA_VISIBLE_DEVICES`` is ``",".join(slot)`` (the local
sandbox sets it from ``GradeOptions.gpus``; Docker asks for those device ids).

Memory is in GB of 10^9 bytes: ``nvidia-smi`` reports an "80 GB" card as 81559 MiB, which
is 85.5 GB, so four gradings declaring 20 GB share it, as a marker would expect. Declared
memory is a promise the scheduler relies on, not a limit it enforces: a grading that uses
more than it declared can make its neighbours run out of GPU memory. Each process on a
device also holds its own CUDA context (a few hundred MB); a declaration should include it.

Device indices are the driver's (``nvidia-smi``'s, which NVML, Docker's device requests
and ``resources.gpu_count()``'s device nodes /dev/nvidia0, 1, ... follow), not CUDA's
renumbering: like ``gpu_count()``, ``inventory()`` ignores the grader's own
``CUDA_VISIBLE_DEVICES`` and does not import torch, so the grader sees the whole machine
and never initialises CUDA itself. The exception is a grader inside a Slurm job given
GPUs (a cluster's worker job, or a marker's interactive job): Slurm's
``CUDA_VISIBLE_DEVICES`` names the job's devices, and only those are shared out.
``gpu_count()`` counts device nodes; ``inventory()`` needs the memory, so it asks
``nvidia-smi``; where that is missing or fails it finds no GPU (set ``AUTOGRADER_GPUS`` to
describe the machine instead).
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..sandboxes.resources import gpu_count

if TYPE_CHECKING:
    from ..course.rubric import Limits

#: Describes the machine's GPUs instead of ``nvidia-smi``: total memory in GB of each, in
#: index order ("80,80": two of 80 GB); "" or "none": no GPU. For tests, and for markers
#: whose ``nvidia-smi`` is missing or who want to hand the grader fewer GPUs.
ENVIRONMENT = "AUTOGRADER_GPUS"
QUERY = ["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"]
QUERY_TIMEOUT_S = 10.0
MIB = 1024 * 1024
GB = 1e9
_SLACK = 1e-9  # in GB: declared sizes such as 0.1 add up in floating point


@dataclass(frozen=True)
class Device:
    """One GPU: the driver's index (what CUDA_VISIBLE_DEVICES names) and its total memory in GB."""

    index: str
    memory_gb: float


@dataclass(frozen=True)
class Need:
    """What one grading needs: ``count`` GPUs (0: none), and of each ``memory_gb`` GB
    (``None``: the whole device, shared with no other grading)."""

    memory_gb: float | None = None
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"Need.count {self.count}: must be 0 or more")
        if self.memory_gb is not None and not self.memory_gb > 0:
            raise ValueError(f"Need.memory_gb {self.memory_gb}: must be positive (None: a whole GPU)")

    @property
    def whole(self) -> bool:
        """Whether the job has its devices to itself (no memory declared, or several GPUs)."""
        return self.memory_gb is None or self.count > 1

    def describe(self) -> str:
        if self.count == 0:
            return "no GPU"
        each = "a whole GPU" if self.memory_gb is None else f"{self.memory_gb:g} GB of GPU memory"
        return each if self.count == 1 else f"{self.count} whole GPUs" + (
            "" if self.memory_gb is None else f" of at least {self.memory_gb:g} GB each")


@dataclass(frozen=True)
class Packing:
    """Jobs placed now (job -> the devices it sees; () for a CPU-only job) and those that
    wait for a later round, in the order they were given."""

    assigned: dict[str, tuple[str, ...]] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)


def inventory(environ: Mapping[str, str] | None = None) -> list[Device]:
    """The machine's GPUs with their total memory: ``AUTOGRADER_GPUS`` when set, else
    ``nvidia-smi`` (none when it is missing, fails or takes longer than a few seconds)."""
    environ = os.environ if environ is None else environ
    if ENVIRONMENT in environ:
        return parse_environment(environ[ENVIRONMENT])
    try:
        done = subprocess.run(QUERY, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return parse_query(done.stdout)


def allocated(devices: Sequence[Device], environ: Mapping[str, str] | None = None) -> list[Device]:
    """Inside a Slurm job given GPUs, only the job's: Slurm sets ``CUDA_VISIBLE_DEVICES`` to
    the devices CUDA is to use there, whether or not its cgroups hide the node's others
    (then ``nvidia-smi`` may number the visible ones from 0). Those indices are what the
    kernels are given; each device's memory is the inventory's of that index, else of the
    device in the same position (the same count seen), else the smallest (a whole GPU when
    the inventory is empty). Anywhere else, ``devices`` as they are."""
    environ = os.environ if environ is None else environ
    if not environ.get("SLURM_JOB_ID") or "CUDA_VISIBLE_DEVICES" not in environ:
        return list(devices)
    tokens = [token.strip() for token in environ["CUDA_VISIBLE_DEVICES"].split(",") if token.strip()]
    by_index = {device.index: device for device in devices}
    if all(token in by_index for token in tokens):
        return [by_index[token] for token in tokens]
    if len(devices) == len(tokens):
        return [Device(token, device.memory_gb) for token, device in zip(tokens, devices, strict=True)]
    smallest = min((device.memory_gb for device in devices), default=math.inf)
    return [Device(token, smallest) for token in tokens]


def parse_environment(text: str) -> list[Device]:
    """Devices 0, 1, ... from "80,80" (GB each); none from "" or "none"."""
    value = text.strip().lower()
    if value in ("", "none"):
        return []
    devices = []
    for index, part in enumerate(value.split(",")):
        try:
            memory = float(part)
        except ValueError:
            memory = math.nan
        if not (memory > 0 and math.isfinite(memory)):
            raise UsageError(f"{ENVIRONMENT} {text!r}: expected each GPU's memory in GB, such as 80,80 "
                             "(or none for no GPU)")
        devices.append(Device(str(index), memory))
    return devices


def parse_query(output: str) -> list[Device]:
    """Devices from ``nvidia-smi --query-gpu=index,memory.total --format=csv,noheader,nounits``
    (lines such as "0, 81559", memory in MiB); lines it cannot read are left out."""
    devices = []
    for line in output.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        try:
            mib = float(parts[1])
        except ValueError:  # "[N/A]", "[Not Supported]"
            continue
        if mib > 0:
            devices.append(Device(parts[0], mib * MIB / GB))
    return devices


def need_of(limits: Limits) -> Need:
    """A rubric's need. Limits that give a kernel no GPU (``gpus: none``) need none; the
    memory of a CPU-only grading is ignored."""
    if limits.gpus.strip().lower() in ("", "none") or limits.gpu_count == 0:
        return Need(None, 0)
    return Need(limits.gpu_memory_gb, limits.gpu_count)


def slots(devices: Sequence[Device], need: Need) -> list[tuple[str, ...]]:
    """The workers a local pool runs when every job has ``need``: each slot the devices its
    kernel sees. None for a CPU-only need (the caller runs CPU workers); one per device for
    a whole GPU; ``floor(memory / need)`` on each device for a declared memory (none on a
    device smaller than the need); for k GPUs, groups of k devices (each large enough).

    Slots alternate between devices ("0", "1", "0", "1", ...), so a pool with fewer workers
    than slots spreads them over the GPUs."""
    if need.count == 0:
        return []
    if need.count > 1:
        fit = [d.index for d in devices if need.memory_gb is None or _fits(need.memory_gb, d.memory_gb)]
        return [tuple(fit[start:start + need.count]) for start in range(0, len(fit) - need.count + 1, need.count)]
    if need.memory_gb is None:
        return [(d.index,) for d in devices]
    per_device = [math.floor(d.memory_gb / need.memory_gb + _SLACK) for d in devices]
    return [(d.index,) for round_ in range(max(per_device, default=0))
            for d, many in zip(devices, per_device, strict=True) if round_ < many]


def pack(devices: Sequence[Device], jobs: Sequence[tuple[str, Need]], *,
         running: Mapping[str, tuple[Need, tuple[str, ...]]] | None = None) -> Packing:
    """Place ``jobs`` (name, need) on ``devices``, first-fit decreasing, for one round.

    Jobs on whole devices go first (most devices first), then jobs declaring memory, the
    largest first, each on the first device with room; ties keep the order given. A device
    never holds more declared memory than it has; a whole-GPU job (no memory declared) is
    alone on its device; a k-GPU job takes k devices no other job uses, each with at least
    its memory when it declares some. CPU-only jobs are placed at once on no device.

    ``running`` holds jobs already on the devices (name -> (need, devices)): their memory
    and devices are taken, so a scheduler calls ``pack`` again with what waits whenever a
    job ends. A job that fits nowhere now waits; a job that could never fit on these
    devices, even all free, is a ``UsageError`` naming it, its need and the devices.
    """
    used = {d.index: 0.0 for d in devices}  # declared memory placed on each device
    alone: set[str] = set()  # devices a job has to itself
    for name, (need, indices) in (running or {}).items():
        for index in indices:
            if index not in used:
                raise ValueError(f"running job {name!r} is on GPU {index}, which is not among the devices")
            if need.whole:
                alone.add(index)
            else:
                used[index] += need.memory_gb or 0.0
    names = [name for name, _ in jobs]
    if len(set(names)) != len(names) or set(names) & set(running or {}):
        raise ValueError("job names must be unique (and differ from those of running jobs)")
    for name, need in jobs:
        check_fits(devices, name, need)

    order = sorted(jobs, key=lambda job: (-job[1].count if job[1].whole else 0, -(job[1].memory_gb or 0.0)))
    assigned: dict[str, tuple[str, ...]] = {}
    for name, need in order:
        placed = _place(devices, need, used, alone)
        if placed is not None:
            assigned[name] = placed
    return Packing(assigned={name: assigned[name] for name in names if name in assigned},
                   waiting=[name for name in names if name not in assigned])


def _fits(need_gb: float, room_gb: float) -> bool:
    return need_gb <= room_gb + _SLACK


def _place(devices: Sequence[Device], need: Need, used: dict[str, float],
           alone: set[str]) -> tuple[str, ...] | None:
    """The first devices with room for ``need``, marked as taken; None if there are none now."""
    if need.count == 0:
        return ()
    if need.whole:
        free = [d.index for d in devices if d.index not in alone and used[d.index] == 0
                and (need.memory_gb is None or _fits(need.memory_gb, d.memory_gb))]
        if len(free) < need.count:
            return None
        chosen = tuple(free[:need.count])
        alone.update(chosen)
        return chosen
    assert need.memory_gb is not None
    for device in devices:
        if device.index not in alone and _fits(used[device.index] + need.memory_gb, device.memory_gb):
            used[device.index] += need.memory_gb
            return (device.index,)
    return None


def check_fits(devices: Sequence[Device], name: str, need: Need) -> None:
    """A ``UsageError`` when ``need`` could not be met even with every device free (a
    caller of ``slots`` that finds none on a machine with GPUs says why with it)."""
    if need.count == 0:
        return
    have = ", ".join(f"GPU {d.index} ({d.memory_gb:.1f} GB)" for d in devices) or "no GPU"
    large = [d for d in devices if need.memory_gb is None or _fits(need.memory_gb, d.memory_gb)]
    if len(large) < need.count:
        raise UsageError(f"job {name!r} needs {need.describe()}, but this machine has {have} "
                         f"(set the rubric's limits gpu_memory_gb / gpu_count, or {ENVIRONMENT})")


def worker_slots(limits: Limits, name: str = "each grading") -> list[tuple[str, ...]]:
    """The devices each worker's kernels see (``gpus.slots``); [] where the run leaves the
    kernels' GPUs as asked (``gpus`` not "auto", CPU-only work, no GPU). A need no GPU of
    this machine can meet is a ``UsageError`` before anything runs."""
    need = need_of(limits)
    if limits.gpus.strip().lower() != "auto" or need.count == 0:
        return []
    found_devices = inventory()
    devices = allocated(found_devices)  # in a Slurm job, only its GPUs
    if not devices:
        if found_devices or not gpu_count():
            return []
        # device nodes without nvidia-smi: their memory is unknown, each is a whole GPU
        return slots([Device(str(i), math.inf) for i in range(gpu_count())], Need(None, need.count))
    if math.inf in (device.memory_gb for device in devices):  # a Slurm job's GPUs of unknown memory
        return slots(devices, Need(None, need.count))
    found = slots(devices, need)
    if not found:
        check_fits(devices, name, need)
    return found
