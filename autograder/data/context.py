"""Where an assignment's datasets come from for one grading run, and the kernel's view.

The source is the marker's data folder (``--data``) or synthetic stand-ins generated
once into a cache. The view is a copy of what students may see, made once per batch,
with held-out labels removed; each submission's ``data/`` folder links to it. Checks
read held-out labels from the source, which no kernel is given.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..sandboxes.scratch import make_temp
from . import DATASETS, DECLARED, downloads, missing, stage, synth, withheld

CACHE_ENV = "AUTOGRADER_CACHE"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autograder"


def private_cache() -> Path:
    """The cache folder, created readable by the grader's user alone: it holds held-out labels."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    return root


def _generator_key(names: list[str]) -> str:
    """Changes whenever a generator's code changes, so the cache never serves stale data: the
    dataset modules' code, and the declarations and stand-ins of the declared ``names``."""
    sha = hashlib.sha256()
    for module in sorted(DATASETS.values(), key=lambda m: m.__name__):
        sha.update(Path(str(module.__file__)).read_bytes())
    for name in sorted(set(names) & set(DECLARED)):
        sha.update(f"{name}={DECLARED[name].fingerprint()}".encode())
    return sha.hexdigest()[:12]


def synthetic_source(names: list[str], *, scale: str = "small") -> Path:
    """Synthetic stand-ins for ``names``, generated into the cache on first use.

    Graders on one machine share the cache: a dataset is generated under a lock, by the
    first grader that needs it, and the others wait for it rather than replacing files a
    running grading reads.
    """
    folder = private_cache() / "synthetic" / f"{scale}-{_generator_key(names)}"
    for name in names:
        done = folder / f".{name}.done"
        if done.exists():
            continue
        with open(_ensure(folder) / f".{name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed, or when this process ends
            if done.exists():  # made while this grader waited
                continue
            partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder))
            for entry in synth(name, partial, scale=scale):
                target = folder / entry.name
                if target.exists():  # what a killed grader left half made
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
                os.replace(entry, target)
            shutil.rmtree(partial, ignore_errors=True)
            done.touch()
    return folder


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class DataContext:
    """The datasets of one grading run: trusted source, and the view kernels get."""

    names: list[str]
    source: Path
    synthetic: bool
    view: Path = field(default_factory=lambda: make_temp("data-view-"))

    def __post_init__(self) -> None:
        stage(self.names, self.source, self.view)

    def described(self) -> str:
        """What a notebook run on this view read, for a marker reading its outputs."""
        origin = "synthetic stand-ins for" if self.synthetic else "the marker's copy of"
        text = f"It read {origin} {', '.join(self.names)}"
        hidden = withheld(self.names)
        if not hidden:
            return text + "."
        lacking = " and ".join(f"{name}'s {what}" for name, what in hidden.items())
        return f"{text}, without {lacking}, so whatever it printed about held-out data is not the grade."

    def downloads(self) -> dict[str, str]:
        """The fetches of the datasets' downloaders the view answers (see ``data.downloads``)."""
        return downloads(self.names, self.view)

    def entries(self) -> list[Path]:
        return sorted(self.view.iterdir())

    def close(self) -> None:
        shutil.rmtree(self.view, ignore_errors=True)


def check_data(names: list[str], *, data_dir: Path | None, synthetic: bool) -> None:
    """Raise ``UsageError`` when neither the data folder nor ``synthetic`` gives ``names``
    (cheap: nothing is opened, so a run can refuse bad options before anything slow)."""
    if not names or synthetic and data_dir is None:
        return
    if data_dir is None:
        raise UsageError(
            f"this assignment reads {', '.join(names)}: give --data DIR (the course's data folder) "
            "or --synthetic (small synthetic stand-ins, for trying the grader out)"
        )
    problems = missing(names, data_dir)
    if problems:
        raise UsageError(f"{data_dir} does not hold the datasets needed:\n" + "\n".join(f"  - {p}" for p in problems))


def open_data(names: list[str], *, data_dir: Path | None, synthetic: bool, scale: str = "small") -> DataContext | None:
    """The data of a run that needs ``names``: the marker's folder, or synthetic stand-ins."""
    if not names:
        return None
    check_data(names, data_dir=data_dir, synthetic=synthetic)
    if data_dir is not None:
        return DataContext(names, data_dir.resolve(), synthetic=False)
    return DataContext(names, synthetic_source(names, scale=scale), synthetic=True)
