"""Execute a notebook on nbclient and keep its kernel alive for probing.

Grading defaults, as nbgrader taught: a failing cell does not stop the notebook,
a cell past its time limit is interrupted and marked where the reader will see it,
huge outputs are cut, and writing to stderr is never an error. A ``parameters``-tagged
cell gets the grader's values injected after it (papermill's convention).

This module knows nothing of pytest or of the command line.
"""

from __future__ import annotations

import ast
import difflib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from .names import bound_names, parse_cell, used_names
from .record import CellStatus

TIMEOUT_ENAME = "CellTimeoutError"
MARKER = "[autograder]"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_IPYTHON_FILE = re.compile(r"\(\d+\.py, line (\d+)\)")  # a cell's temporary file name
_TRACEBACK_LINES = 12
_RESPONSIVE_WAIT_S = 10.0


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass
class CellRun:
    """What happened to one code cell. ``number`` counts the student's code cells from 1;
    it is the cell's ``In [n]`` in the graded run, as tracebacks name it."""

    number: int
    status: CellStatus
    seconds: float = 0.0
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    note: str = ""
    source: str = ""

    @property
    def label(self) -> str:
        return f"code cell {self.number}"

    def outcome(self) -> str:
        """What happened to it, after its label: 'failed with NameError: ...'."""
        if self.status is CellStatus.ERROR:
            text = f"failed with {self.ename}: {self.evalue}".rstrip(": ")
            return f"{text} ({self.note})" if self.note else text
        if self.status in (CellStatus.TIMEOUT, CellStatus.DIED, CellStatus.SKIPPED):
            return self.note
        return "ran"

    def summary(self) -> str:
        joiner = ": " if self.status in (CellStatus.TIMEOUT, CellStatus.DIED, CellStatus.SKIPPED) else " "
        return f"{self.label}{joiner}{self.outcome()}"


@dataclass
class NotebookRun:
    """The execution record of one notebook."""

    name: str
    cells: list[CellRun] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""  # a notebook-level failure: kernel did not start, died, ran out of time
    start_failed: bool = False  # the kernel never became ready
    grader_fault: str = ""  # why the grader, not the student, is to blame for the problem (a start timeout)
    truncated_cells: list[int] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # why cells failed, root causes first (see ``causes``)
    needs_gpu: str = ""  # the cause, where cells failed for want of a GPU this grading did not have
    lacks_files: list[str] = field(default_factory=list)  # causes: files the notebook reads that it was not given
    revived: int = 0  # the cell the kernel died in, after which a fresh kernel went on without it (0: none)
    answers: frozenset[str] = frozenset()  # names other items grade: never offered as a close name

    @property
    def failed(self) -> list[CellRun]:
        return [cell for cell in self.cells if cell.status in (CellStatus.ERROR, CellStatus.TIMEOUT, CellStatus.DIED)]

    def defining(self, name: str) -> list[CellRun]:
        """The cells that bind ``name`` (its first part, for a dotted name), in order."""
        head = name.split(".")[0]
        return [cell for cell in self.cells if head in bound_names(cell.source)]

    def hint_for(self, name: str) -> str:
        """Why ``name`` is not defined after the run: the cell defining it failed or did
        not run, or no cell defines it (with a close name, if one is)."""
        head = name.split(".")[0]
        defining = self.defining(head)
        unfinished = [cell for cell in defining if cell.status is not CellStatus.OK]
        if unfinished:
            cell = unfinished[-1]
            happened = {CellStatus.SKIPPED: f"was {cell.note}", CellStatus.DIED: "was running when the kernel died",
                        CellStatus.TIMEOUT: f"was {cell.note}"}.get(cell.status, cell.outcome())
            return f"it is defined in {cell.label}, which {happened}"
        if defining:
            cells = " and ".join(cell.label for cell in defining)
            return (f"{cells} {'binds' if len(defining) == 1 else 'bind'} it, but it was not defined after the run "
                    "(in a branch that did not run, or deleted later)")
        placeholder = next((cell for cell in self.cells
                            if _unanswered(cell.source) and head in used_names(cell.source)), None)
        if placeholder is not None:  # the template's cell, its answer not written
            text = f"it was not answered: {placeholder.label} uses it and still holds the template's `...`"
        else:
            known = sorted({bound for cell in self.cells for bound in bound_names(cell.source)} - self.answers)
            close = difflib.get_close_matches(head, known, n=1, cutoff=0.75)
            text = "no cell of the notebook defines it" + (f" (is `{close[0]}` meant?)" if close else "")
        if self.problem:
            text += f"; {self.problem}"
        return text


def _unanswered(source: str) -> bool:
    """Whether a cell holds a bare ``...`` statement: the template's place for an answer."""
    tree = parse_cell(source)
    return tree is not None and any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                                    and node.value.value is Ellipsis for node in tree.body)


class _GradingClient(NotebookClient):
    """nbclient with per-cell output limits and a record of each cell's reply."""

    def __init__(self, nb: NotebookNode, *, max_output_bytes: int, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.max_output_bytes = max_output_bytes
        self.output_bytes: dict[int, int] = {}
        self.dropped_bytes: dict[int, int] = {}
        self.last_reply: dict[str, Any] | None = None
        self.on_cell_executed = self._remember_reply

    def _remember_reply(self, cell: NotebookNode, cell_index: int, execute_reply: Any) -> None:
        self.last_reply = execute_reply

    def output(self, outs, msg, display_id, cell_index):  # type: ignore[no-untyped-def]
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(
            len(str(value)) for value in content.get("data", {}).values()
        )
        used = self.output_bytes.get(cell_index, 0)
        if used + size > self.max_output_bytes and msg["msg_type"] != "error":
            self.dropped_bytes[cell_index] = self.dropped_bytes.get(cell_index, 0) + size
            return None
        self.output_bytes[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)


def _marker(text: str) -> NotebookNode:
    return cast(NotebookNode, nbformat.v4.new_output("stream", name="stderr", text=f"{MARKER} {text}\n"))


def inject_parameters(nb: NotebookNode, parameters: dict[str, Any]) -> NotebookNode:
    """Insert the grader's parameter values after the ``parameters`` cell (papermill)."""
    if not parameters:
        return nb
    from papermill.parameterize import parameterize_notebook

    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:  # papermill reads every cell's tags
        cell.metadata.setdefault("tags", [])
    return cast(NotebookNode, parameterize_notebook(
        nb, parameters, kernel_name="python3", language="python", comment="Parameters set by the grader"
    ))


def _not_the_missing_parameters_cell(record: logging.LogRecord) -> bool:
    """papermill's warning about a notebook without a parameters cell names no notebook;
    preflight's finding says it, for the notebook it is about."""
    return "does not contain a cell with tag 'parameters'" not in record.getMessage()


logging.getLogger("papermill").addFilter(_not_the_missing_parameters_cell)


class LiveNotebook:
    """An executed notebook whose kernel is still running, ready to be probed."""

    def __init__(
        self, nb: NotebookNode, run: NotebookRun, manager: AsyncKernelManager, client: _GradingClient
    ) -> None:
        self.nb = nb
        self.run = run
        self.manager = manager
        self.client = client

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def kernel_client(self) -> Any:
        return self.client.kc

    async def alive(self) -> bool:
        return bool(self.client.kc is not None and await self.manager.is_alive())

    async def ashutdown(self) -> None:
        try:
            if self.manager.has_kernel:
                await self.manager.shutdown_kernel(now=True)
        finally:
            if self.client.kc is not None:
                self.client.kc.stop_channels()

    shutdown = run_sync(ashutdown)


async def _responds(client: _GradingClient, wait: float) -> bool:
    """Whether the kernel answers a kernel_info request within ``wait`` seconds."""
    kc = client.kc
    if kc is None:
        return False
    msg_id = kc.kernel_info()
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await kc.shell_channel.get_msg(timeout=left)
        except Exception:  # queue.Empty: no answer in time
            return False
        if msg["parent_header"].get("msg_id") == msg_id:
            return True
    return False


async def _run_prelude(client: _GradingClient, code: str, timeout: float) -> bool:
    """Run the grader's set-up code in the fresh kernel; whether it succeeded."""
    kc: Any = client.kc
    try:
        reply = await kc.execute_interactive(code, store_history=False, allow_stdin=False, timeout=timeout,
                                             output_hook=lambda msg: None)
    except (TimeoutError, DeadKernelError):
        return False
    return bool(reply["content"].get("status") == "ok")


async def _revive(client: _GradingClient, cwd: Path, env: dict[str, str] | None, start_timeout: float,
                  prelude: str, sources: list[str], deadline: float) -> bool:
    """After the kernel died in a cell: a fresh kernel, set up, that runs again the cells
    run before it (their outputs not kept), so that the notebook can go on without that cell;
    whether it could (within the notebook's time)."""
    try:
        if client.kc is not None:
            client.kc.stop_channels()
        manager: Any = client.km
        await manager.shutdown_kernel(now=True)
    except Exception:  # what is left of the dead kernel: the new one does not need it gone
        pass
    try:
        manager.cleanup_resources()  # its sockets and connection file, which the new kernel makes again
    except Exception:
        pass
    import zmq.asyncio

    manager.context = zmq.asyncio.Context()  # the old one was closed with the dead kernel
    try:
        await client.async_start_new_kernel(cwd=str(cwd), env=env)
        await client.async_start_new_kernel_client()
    except Exception:  # no fresh kernel: the notebook stops at the cell that died, as before
        return False
    if prelude and not await _run_prelude(client, prelude, start_timeout):
        return False
    kc: Any = client.kc
    for source in sources:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            await kc.execute_interactive(source, store_history=False, allow_stdin=False, timeout=left,
                                         output_hook=lambda msg: None)
        except (TimeoutError, DeadKernelError):
            return False
    return True


async def run_notebook(
    nb: NotebookNode,
    *,
    name: str,
    manager: AsyncKernelManager,
    cwd: Path,
    env: dict[str, str] | None = None,
    cell_timeout: float,
    total_timeout: float,
    max_output_bytes: int,
    parameters: dict[str, Any] | None = None,
    start_timeout: float = 300,
    total_reason: str = "",
    prelude: str = "",
) -> LiveNotebook:
    """Run every code cell of ``nb`` and return it with its kernel still alive.

    ``total_reason`` says why the cells stop at ``total_timeout`` when that is not the
    notebook's own limit (a run's budget, a platform's timeout). A kernel that is not
    ready within ``start_timeout`` seconds is the grader's failure (a loaded machine),
    recorded in ``run.grader_fault``; a kernel that exits while starting is recorded as
    the notebook's problem (a student's file can shadow a module the kernel imports).
    ``prelude`` is code run before the first cell, not counted as a cell (the kernel's
    set-up, see ``kernel_setup``)."""
    nb = inject_parameters(nb, parameters or {})
    run = NotebookRun(name=name)
    started = time.monotonic()
    deadline = started + total_timeout
    limits: dict[str, Any] = {}  # the last cell's limit: which one, and its seconds
    total_reached = total_reason or f"the notebook's total time limit ({total_timeout:g} s) was reached"

    def cell_limit(cell: NotebookNode) -> float:
        left = deadline - time.monotonic()
        limits["which"] = "per-cell" if cell_timeout <= left else "total"
        seconds: float = round(max(0.1, min(cell_timeout, left)), 1)
        limits["seconds"] = seconds
        return seconds

    client = _GradingClient(
        nb,
        km=manager,
        max_output_bytes=max_output_bytes,
        timeout_func=cell_limit,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "time limit reached", "traceback": []},
        record_timing=False,
        shutdown_kernel="immediate",
        startup_timeout=start_timeout,
    )
    live = LiveNotebook(nb, run, manager, client)
    try:
        await client.async_start_new_kernel(cwd=str(cwd), env=env)
        await client.async_start_new_kernel_client()
    except Exception as error:  # a student file shadowing a module can stop the kernel starting
        run.problem = f"the kernel could not start: {type(error).__name__}: {error}"
        run.start_failed = True
        if isinstance(error, TimeoutError) or "didn't respond" in str(error) or "did not respond" in str(error):
            run.grader_fault = f"the kernel was not ready within {start_timeout:g} s"
        run.seconds = time.monotonic() - started
        await live.ashutdown()
        return live

    stop_reason = ""
    if prelude and not await _run_prelude(client, prelude, start_timeout):
        run.problem = "the grader could not set the kernel up"
        run.start_failed = True
        run.grader_fault = run.problem
        run.seconds = time.monotonic() - started
        await live.ashutdown()
        return live
    ran: list[str] = []  # the sources run so far (a fresh kernel after a death runs them again)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if "injected-parameters" in cell.metadata.get("tags", []):  # the grader's, not counted as In [n]
            ran.append(cell.source)
            try:
                await client.async_execute_cell(cell, index, store_history=False)
            except DeadKernelError:
                stop_reason = "not run: the kernel died while the grader's parameters were set"
                run.problem = stop_reason.removeprefix("not run: ")
            continue
        record = CellRun(number=len(run.cells) + 1, status=CellStatus.OK, source=cell.source)
        run.cells.append(record)
        if stop_reason:
            record.status, record.note = CellStatus.SKIPPED, stop_reason
            continue
        if deadline - time.monotonic() <= 0:
            stop_reason = f"not run: {total_reached}"
            record.status, record.note = CellStatus.SKIPPED, stop_reason
            continue
        client.last_reply = None
        cell_started = time.monotonic()
        try:
            await client.async_execute_cell(cell, index, execution_count=record.number)
        except DeadKernelError:
            record.status = CellStatus.DIED
            record.note = "the kernel died while this cell ran (crash, exit or memory limit)"
            run.problem = f"the kernel died while running {record.label}"
            if not run.revived and await _revive(client, cwd, env, start_timeout, prelude, ran, deadline):
                run.revived = record.number  # the cells after it run in a fresh kernel, without it
                record.note += "; a fresh kernel re-ran the cells before it and went on without it"
            else:
                stop_reason = "not run: the kernel died in an earlier cell"
                await live.ashutdown()
            cell.outputs.append(_marker(record.note))
        record.seconds = time.monotonic() - cell_started
        if record.status is not CellStatus.DIED:
            ran.append(cell.source)
        dropped = client.dropped_bytes.get(index)
        if dropped:
            run.truncated_cells.append(record.number)
            cut = f"output cut: {dropped} bytes beyond the {max_output_bytes}-byte limit per cell"
            cell.outputs.append(_marker(cut))
        last: dict[str, Any] = client.last_reply or {}
        reply: dict[str, Any] = last.get("content", {})
        if record.status is CellStatus.OK and reply.get("status") == "error":
            if reply.get("ename") == TIMEOUT_ENAME:
                record.status = CellStatus.TIMEOUT
                which = total_reason if limits["which"] == "total" and total_reason else f"{limits['which']} time limit"
                record.note = f"stopped after {limits['seconds']:g} s ({which})"
                cell.outputs.append(_marker(f"this cell was {record.note}"))
                cell.metadata["autograder"] = {"status": "timeout", "limit_s": limits["seconds"]}
                if limits["which"] == "total":
                    stop_reason = f"not run: {total_reached}"
                if not await _responds(client, _RESPONSIVE_WAIT_S):
                    stop_reason = "not run: the kernel did not respond after an earlier cell's time limit"
                    run.problem = f"the kernel stopped responding after {record.label} timed out"
                    await live.ashutdown()
            else:
                record.status = CellStatus.ERROR
                record.ename = str(reply.get("ename", ""))
                evalue = strip_ansi(str(reply.get("evalue", "")))[:500]
                record.evalue = _IPYTHON_FILE.sub(r"(line \1)", evalue)
                lines = strip_ansi("\n".join(reply.get("traceback", []))).splitlines()
                record.traceback = [line for line in lines if line.strip("- ")][-_TRACEBACK_LINES:]
                if "No space left on device" in record.evalue or "[Errno 28]" in record.evalue:
                    record.note = "the kernel's disk space is used up (the sandbox's scratch limit)"
    if not run.problem and any(c.status is CellStatus.SKIPPED for c in run.cells):
        run.problem = stop_reason.removeprefix("not run: ")
    run.seconds = time.monotonic() - started
    return live


execute_notebook = run_sync(run_notebook)
