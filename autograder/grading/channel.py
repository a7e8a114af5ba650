"""The narrow channel from a check to a student's live kernel.

A check can call a student function with inputs, read a variable, describe a name, or
run a grader-supplied probe in the student's namespace. Requests and replies are JSON
(see ``wire``); nothing else crosses. Every failure of the student's side becomes a
``StudentCodeError`` with a message a student can act on.
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any, cast

from jupyter_core.utils import run_sync

from ..errors import (
    BadReply,
    GraderError,
    KernelDied,
    NotCallable,
    NotDefined,
    ProbeTimeout,
    StudentRaised,
)
from . import wire
from .binding import CANDIDATES_PROBE, Binder, Binding
from .execute import CellRun, LiveNotebook, NotebookRun
from .names import bound_names, free_names, pure_definition, used_names

_INTERRUPT_GRACE_S = 10.0
_PRINTED_LIMIT = 4000
_ALIVE_POLL_S = 0.25
_AS_DEFINED = """
def probe(cell_source, name, args):
    scope = dict(globals())
    exec(compile(get_ipython().transform_cell(cell_source), "<the cell again>", "exec"), scope)
    return scope[name](*args)
"""
#: Who raised, when a grader probe fails on the student's objects (the traceback shows where).
PROBE_SUBJECT = "the check's code, run on your notebook's objects,"


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_LIBRARY = ("site-packages", "dist-packages", "/lib/python", "<frozen", "<autograder")


def _probe_subject(traceback: list[str]) -> str:
    """Who raised inside a grader probe: the student's own function where the traceback
    reaches one (the innermost frame of the notebook's code, not a library's), else the
    check's code run on the notebook's objects."""
    frames = [match for line in traceback for match in _FRAME.finditer(line)]
    own = [match for match in frames if match.group(1) != wire.PROBE_FILENAME and not any(
        part in match.group(1) for part in _LIBRARY) and match.group(3) != "<module>"]
    if not own:
        return PROBE_SUBJECT
    return f"your `{own[-1].group(3)}` (line {own[-1].group(2)} of its cell), called by the check,"


def _execute_carrying(kc: Any, metadata: dict[str, Any], buffers: list[bytes], code: str, silent: bool = False,
                      store_history: bool = True, user_expressions: dict[str, Any] | None = None,
                      allow_stdin: bool | None = None, stop_on_error: bool = True) -> str:
    """``kc.execute`` (jupyter_client's), its request also carrying ``metadata`` and ``buffers``."""
    content = {"code": code, "silent": silent, "store_history": store_history,
               "user_expressions": user_expressions or {},
               "allow_stdin": kc.allow_stdin if allow_stdin is None else allow_stdin, "stop_on_error": stop_on_error}
    message = kc.session.msg("execute_request", content, metadata=metadata)
    message["buffers"] = buffers
    kc.shell_channel.send(message)
    return cast(str, message["header"]["msg_id"])


def _relies_on(request: dict[str, Any]) -> frozenset[str]:
    """The names of the student's namespace a request reads: the one it calls or gets, or
    those a probe reads and does not bind itself."""
    if request.get("op") == "probe":
        return free_names(str(request.get("source", "")))
    return frozenset({str(request.get("name", "")).split(".")[0]})


class KernelChannel:
    """Talks to one live notebook. Methods are synchronous; ``a``-prefixed ones are async."""

    def __init__(self, live: LiveNotebook, *, timeout: float) -> None:
        self.live = live
        self.timeout = timeout
        self._installed = False
        self._dead = ""
        #: Text the student's code printed while answering the last request.
        self.printed = ""
        #: What checks measured in this kernel (a model's outputs on a split, say), kept for
        #: the other items of the same grading: the kernel's objects do not change between them.
        self.memo: dict[Any, Any] = {}
        #: Finds the student's object for a name the notebook lacks (None: names are taken as they are).
        self.binder: Binder | None = None
        #: The template's names bound so far, to the student's expressions.
        self.bindings: dict[str, str] = {}
        #: The bindings the requests since it was last emptied relied on (one check's, in grading).
        self.used: list[Binding] = []
        self.touched: set[str] = set()  # the notebook's names the current check's requests read

    @property
    def notebook(self) -> str:
        return self.live.name

    async def _execute(self, code: str, timeout: float, label: str,
                       carrying: tuple[dict[str, Any], list[bytes]] | None = None) -> tuple[dict[str, Any], list[Any]]:
        """Run ``code``; ``carrying`` is the metadata and buffers its execute request carries."""
        if self._dead:
            raise KernelDied(self._dead)
        if not await self.live.alive():
            self._dead = f"the kernel of {self.notebook} is not running ({self.live.run.problem or 'it stopped'})"
            raise KernelDied(self._dead)
        replies: list[Any] = []
        printed: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "display_data" and wire.REPLY_MIME in content.get("data", {}):
                replies.append(content["data"][wire.REPLY_MIME])
            elif kind == "stream" and sum(map(len, printed)) < _PRINTED_LIMIT:
                printed.append(content.get("text", ""))

        kc = self.live.kernel_client
        if carrying is not None:  # execute_interactive sends its request through kc.execute
            kc.execute = functools.partial(_execute_carrying, kc, *carrying)
        request = asyncio.ensure_future(
            kc.execute_interactive(
                code,
                store_history=False,
                allow_stdin=False,
                stop_on_error=False,
                timeout=timeout,
                output_hook=hook,
            )
        )
        watcher = asyncio.ensure_future(self._until_dead())
        try:
            await asyncio.wait({request, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            kc.__dict__.pop("execute", None)
        if not request.done():
            request.cancel()
            self._dead = f"the kernel died while running `{label}`"
            raise KernelDied(self._dead)
        watcher.cancel()
        try:
            reply = request.result()
        except TimeoutError:
            await self._recover(label, timeout)
            raise ProbeTimeout(f"`{label}` did not finish within {timeout:g} s") from None
        self.printed = "".join(printed)[:_PRINTED_LIMIT]
        return reply["content"], replies

    async def _until_dead(self) -> None:
        while await self.live.manager.is_alive():
            await asyncio.sleep(_ALIVE_POLL_S)

    async def _recover(self, label: str, timeout: float) -> None:
        """Interrupt a request that ran too long; give the kernel up if it will not stop."""
        manager = self.live.manager
        if not await manager.is_alive():
            self._dead = f"the kernel died while running `{label}`"
            raise KernelDied(self._dead)
        await manager.interrupt_kernel()
        kc = self.live.kernel_client
        deadline = asyncio.get_running_loop().time() + _INTERRUPT_GRACE_S
        while asyncio.get_running_loop().time() < deadline:
            try:
                msg = await kc.iopub_channel.get_msg(timeout=0.5)
            except Exception:  # queue.Empty
                continue
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                return
        self._dead = f"the kernel stopped responding after `{label}` ran past {timeout:g} s"
        await self.live.ashutdown()

    async def _ensure_installed(self) -> None:
        if self._installed:
            return
        content, _ = await self._execute(wire.install_source(), 60, "grader set-up")
        if content.get("status") != "ok":
            ename, evalue = content.get("ename", "?"), content.get("evalue", "")
            raise BadReply(f"the grader could not talk to the kernel of {self.notebook} ({ename}: {evalue})")
        self._installed = True

    async def _arequest(self, request: dict[str, Any], label: str, timeout: float | None) -> Any:
        """Answer ``request``; a name the notebook lacks is bound to the student's object
        where the rubric says what it must be (``binding``), and the request tried again."""
        tried: set[str] = set()
        await self._vet(request)
        while True:
            self._note_use(request)
            try:
                bound = {"bind": dict(self.bindings)} if self.bindings else {}
                return await self._arequest_once({**request, **bound}, label, timeout)
            except NotDefined as missing:
                head = missing.name.split(".")[0]
                if self.binder is None or head in tried or head in self.bindings:
                    raise
                tried.add(head)
                binding = await self.binder.resolve(head, self._candidates, hint=missing.hint)
                self.bindings[head] = binding.target

    async def _vet(self, request: dict[str, Any]) -> None:
        """Have the binder look at the template's names the request relies on that the notebook
        defines (see ``Binder.vet``) before they are used."""
        if self.binder is None or self.binder.follows:
            return
        for name in self.binder.specs:
            if name in self.binder.vetted or name in self.bindings:
                continue
            if name in _relies_on(request):
                binding = await self.binder.vet(name, self._candidates)
                if binding is not None:
                    self.bindings[name] = binding.target

    def _note_use(self, request: dict[str, Any]) -> None:
        """Remember which names, and which bindings, a request relies on (for the item's reason)."""
        relied = _relies_on(request)
        self.touched |= {self.bindings.get(name, name).split(".")[0].split("[")[0] for name in relied}
        if not self.binder:
            return
        for name, binding in self.binder.bound.items():
            if name in self.bindings and name in relied and binding not in self.used:
                self.used.append(binding)

    async def _candidates(self, kind: str, inputs: list[list[int]], of: str, reserved: list[str]) -> list[Any]:
        request = {"op": "probe", "source": CANDIDATES_PROBE, "entry": "probe", "args": [kind, inputs, of, reserved],
                   "kwargs": {}, **({"bind": dict(self.bindings)} if self.bindings else {})}
        found = await self._arequest_once(request, "the grader's search of the notebook", None)
        return list(found) if isinstance(found, list) else []

    async def _arequest_once(self, request: dict[str, Any], label: str, timeout: float | None) -> Any:
        await self._ensure_installed()
        limit = timeout if timeout is not None else self.timeout
        content, replies = await self._execute(wire.SERVE_MESSAGE, limit, label, wire.request_message(request))
        if not replies:
            ename, evalue = content.get("ename", "no reply"), content.get("evalue", "")
            raise BadReply(f"`{label}` gave no answer ({ename}: {evalue})".replace(": )", ")"))
        try:
            payload = wire.decode(replies[-1])
        except wire.WireError as error:
            raise BadReply(f"`{label}` answered with a malformed value: {error}") from None
        if not isinstance(payload, dict) or not ({"ok", "error"} & payload.keys()):
            raise BadReply(f"`{label}` answered with a malformed reply")
        if "error" in payload:
            self._raise(payload["error"], label)
        return payload["ok"]

    def _raise(self, info: dict[str, Any], label: str) -> None:
        kind = info.get("kind")
        name = str(info.get("name", label))
        if kind == "undefined":
            raise NotDefined(name, self.notebook, self.live.run.hint_for(name))
        if kind == "not_callable":
            raise NotCallable(name, str(info.get("type", "value")))
        if kind == "raised":
            raise StudentRaised(
                name, str(info.get("ename")), str(info.get("evalue", "")), list(info.get("traceback", []))
            )
        if kind == "unencodable":
            raise BadReply(f"`{label}` returned a value that cannot be sent to the grader: {info.get('message')}")
        raise GraderError(f"the kernel-side handler failed on `{label}`: {info}")

    async def acall(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        request = {"op": "call", "name": name, "args": list(args), "kwargs": kwargs}
        return await self._arequest(request, name, timeout)

    async def aget(self, name: str, *, timeout: float | None = None) -> Any:
        return await self._arequest({"op": "get", "name": name}, name, timeout)

    async def adescribe(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._arequest({"op": "describe", "name": name}, name, None))

    async def aprobe(
        self, source: str, *args: Any, entry: str = "probe", timeout: float | None = None, **kwargs: Any
    ) -> Any:
        request = {"op": "probe", "source": source, "entry": entry, "args": list(args), "kwargs": kwargs}
        try:
            return await self._arequest(request, entry, timeout)
        except StudentRaised as error:  # "`probe` raised" would mean nothing to a student
            raise StudentRaised(_probe_subject(error.traceback), error.ename, error.evalue, error.traceback) from None

    async def acall_as_defined(self, name: str, cell: CellRun, *args: Any, timeout: float | None = None) -> Any:
        """Call ``name`` as ``cell`` defined it, before a later cell redefined it: the cell
        is run again in a copy of the student's namespace (only for cells that just define
        things, see ``names.pure_definition``), the live namespace is left as it is."""
        if not pure_definition(cell.source):
            raise GraderError(f"{cell.label} of {self.notebook} does more than define names; it is not run again")
        return await self.aprobe(_AS_DEFINED, cell.source, name, list(args), timeout=timeout)

    def failed_cells_touched(self) -> list[str]:
        """The failed cells that use a name the current check read: what they did (a training,
        say) may not have happened, which a failing item's reason says."""
        notebooks = {name for cell in self.run.cells for name in bound_names(cell.source)}  # not builtins
        return [f"{cell.label}, which uses `{name}`, {cell.outcome()}" for cell in self.run.failed
                for name in sorted(self.touched & notebooks & used_names(cell.source))[:1]]

    @property
    def run(self) -> NotebookRun:
        """The execution record of the notebook: its cells, their sources and outcomes."""
        return self.live.run

    #: Call the student's function ``name`` with JSON/array arguments; returns its decoded result.
    call = run_sync(acall)
    #: ``call_as_defined(name, cell, *args)``: call ``name`` as an earlier ``cell`` defined it.
    call_as_defined = run_sync(acall_as_defined)
    #: Read the student's variable ``name`` (dotted attributes allowed).
    get = run_sync(aget)
    #: ``{"defined": bool, "type": str, "callable": bool}`` for ``name``.
    describe = run_sync(adescribe)
    #: Run a grader-written function (``entry`` in ``source``) in the student's namespace.
    probe = run_sync(aprobe)
