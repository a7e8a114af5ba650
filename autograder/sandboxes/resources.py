"""What one kernel may use, and the machine's GPUs: the defaults are typed here once.

The rubric's ``limits`` (``autograder.course.rubric.Limits``) take their defaults from
``Resources``, the grading options (``autograder.grading.pipeline.GradeOptions``) leave
a limit ``None`` to mean the rubric's, and every value is checked where it is made,
with a message naming where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

#: Below this a kernel cannot even import numpy.
MIN_MEMORY_MB = 64
#: What one kernel may use unless the rubric or the run says otherwise.
MEMORY_MB = 8192
PROCESSES = 512  # processes and threads
SCRATCH_MB = 2048  # writable scratch in all: the kernel's copy of the submission and /tmp
GPUS = "auto"  # all GPUs when the machine has any


def has_nvidia_gpu() -> bool:
    """Whether this machine shows an NVIDIA GPU to its processes."""
    return Path("/dev/nvidiactl").exists()


def gpu_count() -> int:
    """How many NVIDIA GPUs this machine has (device nodes /dev/nvidia0, 1, ...)."""
    if not has_nvidia_gpu():
        return 0
    return len([p for p in Path("/dev").glob("nvidia[0-9]*") if p.name[len("nvidia"):].isdigit()])


def gpu_problem(value: str) -> str | None:
    """Why ``value`` is not a GPU selection (auto, all, none, or indices such as 0,1); None if it is."""
    text = value.strip().lower()
    if text in ("auto", "all", "none", ""):
        return None
    if all(part.strip().isdigit() for part in text.split(",")):
        return None
    return "expected auto, all, none, or GPU indices such as 0 or 0,1"


def check_gpus(value: str, where: str) -> str:
    """``value`` if it selects GPUs, else a ``UsageError`` naming ``where`` it came from."""
    problem = gpu_problem(value)
    if problem:
        raise UsageError(f"{where} {value!r}: {problem}")
    return value


def parse_memory(text: str) -> int:
    """Megabytes from 8g, 512m or a plain number of megabytes."""
    value = text.strip().lower().removesuffix("b")
    scale = {"g": 1024, "m": 1, "t": 1024 * 1024}.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        megabytes = float(number) * (scale or 1)
    except ValueError:
        raise UsageError(f"--memory {text!r}: expected a size such as 8g or 512m") from None
    if megabytes < MIN_MEMORY_MB:
        raise UsageError(f"--memory {text!r}: a kernel needs at least {MIN_MEMORY_MB}m")
    return int(megabytes)


@dataclass(frozen=True)
class Resources:
    """What one kernel may use. ``None`` leaves a resource unlimited."""

    memory_mb: int | None = MEMORY_MB
    cpus: float | None = None
    processes: int | None = PROCESSES
    scratch_mb: int | None = SCRATCH_MB
    gpus: str = GPUS  # auto (all when the machine has any) | all | none | comma-separated indices
    cpu_seconds: float | None = None

    def __post_init__(self) -> None:
        check_gpus(self.gpus, "Resources.gpus")
        if self.memory_mb is not None and self.memory_mb < MIN_MEMORY_MB:
            raise UsageError(f"Resources.memory_mb {self.memory_mb}: a kernel needs at least {MIN_MEMORY_MB} MB")
        for name in ("cpus", "processes", "scratch_mb", "cpu_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"Resources.{name} {value}: must be positive (None: unlimited)")

    def gpu_indices(self, machine_has_gpu: bool | None = None) -> list[str] | None:
        """``None`` for all GPUs, else the indices (empty for none)."""
        value = self.gpus.strip().lower()
        if value == "auto":
            value = "all" if (has_nvidia_gpu() if machine_has_gpu is None else machine_has_gpu) else "none"
        if value == "all":
            return None
        if value in ("", "none"):
            return []
        return [part.strip() for part in value.split(",")]

