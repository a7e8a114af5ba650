"""How a batch shows its progress, and how a signal stops it.

At a terminal: a rich progress bar (done, running, time left) with a line per finished
submission. Without one (a log file overnight): plain lines, each flushed as it happens,
one per finished submission and a progress line every ``AUTOGRADER_PROGRESS_EVERY_S``
seconds (60 by default). SIGTERM and SIGHUP stop a command the way Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import UsageError
from .batch import BatchEntry, BatchEvents, EntryStatus

EVERY_ENV = "AUTOGRADER_PROGRESS_EVERY_S"


def progress_every() -> float:
    """Seconds between progress lines without a terminal (``AUTOGRADER_PROGRESS_EVERY_S``)."""
    text = os.environ.get(EVERY_ENV, "60")
    try:
        every = float(text)
    except ValueError:
        every = 0.0
    if every <= 0:
        raise UsageError(f"{EVERY_ENV}={text!r}: expected a number of seconds above 0")
    return every


def place(entry: BatchEntry) -> str:
    """Where a submission runs on a cluster, shortly: ``node7, Slurm job 123`` from the
    worker ``tcp://10.0.0.7:4242 (node7, Slurm job 123)``; empty on this machine."""
    worker = entry.worker
    if worker.endswith(")") and " (" in worker:
        return worker[worker.index(" (") + 2:-1]
    return worker


def finished_line(entry: BatchEntry) -> str | None:
    """The line (rich markup) for a finished submission; None for one skipped."""
    if entry.status is EntryStatus.SKIPPED:
        return None
    where = f" on {place(entry)}" if entry.worker else ""
    if entry.status is EntryStatus.ERROR:
        return f"[magenta]✗ {entry.id}[/]{where}: {entry.message}"
    totals = entry.totals
    note = f"  [yellow]{entry.message}[/]" if entry.message else ""
    bonus = f" + {totals['bonus_points']:g} bonus" if "bonus_points" in totals else ""
    return f"[green]✓[/] {entry.id}: {totals['auto_points']:g} / {totals['auto_max']:g} automatic{bonus} " \
           f"({entry.seconds:.1f} s{where}){note}"


def clock(seconds: float) -> str:
    """``1:02:03`` for 3723 seconds."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Tally(BatchEvents):
    """What every display counts: found, to grade, finished, running, inputs refused."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.count = 0
        self.to_grade: int | None = None  # None until the inputs are read
        self.finished = 0  # graded (or failed) in this run
        self.done_count = 0  # finished or skipped
        self.running: list[str] = []
        self.places: dict[str, str] = {}  # on a cluster: where each running submission is graded
        self.refusals: list[str] = []
        self.began = time.monotonic()
        self.estimate: tuple[float, float] | None = None  # (when, seconds left then), from the last finish

    def left(self) -> tuple[int, int] | None:
        """(not yet graded, to grade in this run); None before the inputs were read."""
        if self.to_grade is None:
            return None
        return self.to_grade - self.finished, self.to_grade

    def say(self, text: str) -> None:
        """A line of rich markup, flushed at once."""
        self.console.print(text, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def begin(self, count: int, to_grade: int) -> None:
        self.count, self.to_grade, self.began = count, to_grade, time.monotonic()
        if to_grade < count:
            self.say(f"{count - to_grade} of {count} submissions already graded: skipped (--regrade grades them "
                     "again)")

    def note(self, text: str) -> None:
        self.say(f"[yellow]note:[/] {text}")

    def refused(self, text: str) -> None:
        self.refusals.append(text)
        self.say(f"[red]input problem:[/] {text}; not graded")

    def start(self, entry: BatchEntry) -> None:
        if entry.id in self.running:  # started again elsewhere: its worker was lost
            self.running.remove(entry.id)
        self.running.append(entry.id)
        self.places[entry.id] = place(entry)

    def done(self, entry: BatchEntry) -> None:
        if entry.id in self.running:
            self.running.remove(entry.id)
        self.done_count += 1
        if entry.status is not EntryStatus.SKIPPED:
            self.finished += 1
            now, left = time.monotonic(), self.left()
            if left is not None:
                self.estimate = now, (now - self.began) / self.finished * left[0]
        line = finished_line(entry)
        if line is not None:
            self.say(line)

    def running_names(self) -> str:
        shown = ", ".join(f"{name} on {self.places[name]}" if self.places.get(name) else name
                          for name in self.running[:3])
        return shown + (f" +{len(self.running) - 3}" if len(self.running) > 3 else "")


class BarEvents(Tally):
    """At a terminal: a progress bar, with the running submissions in its description."""

    def __init__(self, console: Console, title: str, progress: Progress) -> None:
        super().__init__(console, title)
        self.progress = progress
        self.task = progress.add_task(title, total=None)

    def say(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)

    def begin(self, count: int, to_grade: int) -> None:
        self.progress.update(self.task, total=count)
        super().begin(count, to_grade)

    def _describe(self) -> None:
        shown = self.running_names()
        self.progress.update(self.task, description=f"{self.title}: {shown}" if shown else self.title)

    def start(self, entry: BatchEntry) -> None:
        super().start(entry)
        self._describe()

    def done(self, entry: BatchEntry) -> None:
        super().done(entry)
        self._describe()
        self.progress.advance(self.task)


class LogEvents(Tally):
    """Without a terminal: plain lines as things happen, and a progress line every
    ``every`` seconds from a thread of its own (a submission may run for an hour)."""

    def __init__(self, console: Console, title: str, every: float) -> None:
        super().__init__(console, title)
        self.every = every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def say(self, text: str) -> None:
        with self._lock:
            super().say(text)

    def begin(self, count: int, to_grade: int) -> None:
        self.say(f"{self.title}: {count} submissions found, {to_grade} to grade")
        super().begin(count, to_grade)
        if to_grade and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def status(self) -> str:
        """``progress: 3/10 done, 2 running (a, b), eta 0:12:00``."""
        running = f", {len(self.running)} running ({self.running_names()})" if self.running else ""
        eta = "unknown"
        if self.estimate is not None:
            when, seconds = self.estimate
            eta = clock(seconds - (time.monotonic() - when))
        return f"progress: {self.done_count}/{self.count} done{running}, eta {eta}"

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.say(self.status())

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()


@contextmanager
def batch_display(console: Console, title: str) -> Iterator[Tally]:
    """The events a batch reports to: a bar at a terminal, plain flushed lines otherwise."""
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            events = BarEvents(console, title, progress)
            yield events
            progress.update(events.task, description=title.replace("grading", "graded", 1))
        return
    plain = LogEvents(console, title, progress_every())
    try:
        yield plain
    finally:
        plain.close()


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, stopping the command the way Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: Any) -> None:
    for other in (signal.SIGTERM, signal.SIGHUP):  # a second signal must not break the cleanup
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise ``Stopped``, a KeyboardInterrupt: running kernels
    are shut down and nothing is half-written, as with Ctrl-C. A signal ignored on entry
    (``nohup``) stays ignored."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def exit_code(stop: BaseException) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(stop, "signum", signal.SIGINT)


def stopped_message(stop: BaseException, left: tuple[int, int] | None) -> str:
    """What an interrupted run says: by what, how much is left, and that a rerun resumes."""
    name = signal.Signals(exit_code(stop) - 128).name
    count = f"{left[0]} of {left[1]} submissions not graded; " if left else ""
    return f"interrupted by {name}: {count}results written so far are kept; run again to resume"
