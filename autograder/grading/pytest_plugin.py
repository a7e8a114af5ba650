"""The pytest plugin (entry point ``autograder``): rubric-mapped checks on the trusted side.

Every check is an ordinary pytest test in ``rubrics/<id>/checks/check_*.py``, marked
with the rubric item it scores::

    @pytest.mark.item("3.2b")
    def test_loss(nb, given, tolerance): ...

Fixtures: ``nb`` (the channel to the live kernel of the item's notebook), ``given``
(the values the rubric declares for the item), ``tolerance``, ``measure`` (record a
measured value for a metric item), ``rubric_item`` and ``assignment``.

The grader runs pytest in-process with a ``CheckSession`` already holding the live
kernels. Course staff can also run checks directly, and the plugin then executes the
submission itself:  ``pytest rubrics/<id>/checks --ag-submission PATH``.
The plugin stays inert in any other pytest run.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..course.assignment import Assignment
from ..course.rubric import Item, Tolerance
from ..data.context import DataContext
from ..errors import AssignmentError, Referred, StudentCodeError, StudentRaised
from ..sandboxes.backends import SANDBOXES
from .channel import KernelChannel
from .outcomes import SESSION_KEY, CheckSession, Measurement, TestOutcome
from .record import Status

DEFAULT_TOLERANCE = Tolerance(abs=1e-6, rel=1e-5, why="an item without its own: float32 arithmetic")


def _session(config: pytest.Config) -> CheckSession | None:
    return config.stash.get(SESSION_KEY, None)


def _item_id(node: pytest.Item) -> str | None:
    marks = list(node.iter_markers("item"))
    if len(marks) != 1 or len(marks[0].args) != 1:
        return None
    return str(marks[0].args[0])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a submission with rubric-mapped checks")
    group.addoption("--ag-submission", help="notebook, folder or zip to execute and check")
    group.addoption(
        "--ag-assignment",
        help="assignment id or rubric folder (default: the folder above the checks)",
    )
    group.addoption("--ag-public-only", action="store_true", help="only public items")
    group.addoption("--ag-sandbox", choices=SANDBOXES, default="auto",
                    help="where the submission runs, as autograder grade's --sandbox (default: auto)")
    group.addoption("--ag-data", metavar="DIR",
                    help="the course's data folder (default: small synthetic stand-ins of the datasets)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "item(id): the rubric item this check scores")
    submission = config.getoption("--ag-submission", None)
    if submission and _session(config) is None:
        from .standalone import start_session  # only for direct runs

        if getattr(config.option, "dist", "no") != "no":  # pytest-xdist asked for (a project's addopts)
            config.option.dist, config.option.numprocesses = "no", 0  # one submission, one session

        config.stash[SESSION_KEY] = start_session(config, submission)


def pytest_collect_file(file_path: Any, parent: pytest.Collector) -> pytest.Module | None:
    """Check files are named ``check_*.py``; collect them whenever a grading session is on."""
    if _session(parent.config) is None:
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("check_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    session = _session(config)
    if session is not None:
        for callback in session.on_teardown:
            callback()


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    grading = _session(config)
    if grading is None:
        return
    rubric = grading.assignment.rubric
    marked: dict[str, list[pytest.Item]] = {}
    for node in items:
        item_id = _item_id(node)
        if item_id is None:
            grading.problems.append(f"{node.nodeid}: needs exactly one @pytest.mark.item('<id>')")
            continue
        try:
            question, item = rubric.item(item_id)
        except KeyError:
            grading.problems.append(f"{node.nodeid}: item {item_id!r} is not in the rubric")
            continue
        if item.kind != "auto" or question.status != "ready":
            grading.problems.append(f"{node.nodeid}: {item_id!r} is not an automatic item of a ready question")
            continue
        marked.setdefault(item_id, []).append(node)
    for question, item in rubric.items():
        public_side = grading.public_only and item.visibility == "hidden"  # a student bundle has no hidden checks
        if item.kind == "auto" and question.status == "ready" and item.id not in marked and not public_side:
            grading.problems.append(f"item {item.id!r} is automatic but no check is marked for it")
    selected = {item_id for item_id in marked if grading.in_scope(item_id)}
    if grading.problems:  # a broken assignment grades nothing rather than something wrong
        selected = set()
    grading.selected_items = selected
    keep = [node for node in items if _item_id(node) in selected]
    drop = [node for node in items if _item_id(node) not in selected]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def _classify(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[Status, str, list[str]]:
    error = excinfo.value
    if isinstance(error, Referred):
        return Status.REFERRED, str(error), []
    if isinstance(error, StudentCodeError):
        detail = error.traceback if isinstance(error, StudentRaised) else []
        return Status.FAILED, str(error), detail
    if isinstance(error, AssertionError) or excinfo.typename == "Failed":
        text = str(error).strip() or "assertion failed"
        return Status.FAILED, text[:800], []
    if excinfo.typename == "Skipped":
        return Status.ERROR, f"the check was skipped ({error}); a skipped check earns nothing", []
    lines = "".join(tb.format_exception(type(error), error, error.__traceback__)).splitlines()
    return Status.ERROR, f"grader error: {type(error).__name__}: {error}", lines[-12:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    grading = _session(item.config)
    item_id = _item_id(item)
    if grading is None or item_id is None:
        return report
    if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
        channel = grading.channels.get(grading.notebook_of(item_id) or "")
        if call.excinfo is None:
            outcome = TestOutcome(item.nodeid, item_id, Status.PASSED)
        else:
            status, reason, detail = _classify(call.excinfo)
            if status is Status.FAILED and channel is not None:  # a training cell that failed is said
                failed = [text for text in channel.failed_cells_touched() if text.split(",")[0] not in reason]
                reason += "".join(f" ({text})" for text in failed[:2])
            outcome = TestOutcome(item.nodeid, item_id, status, reason, detail)
        if channel is not None:
            outcome.bound = [binding.sentence() for binding in channel.used]
        grading.outcomes.append(outcome)
    elif call.when == "teardown" and call.excinfo is not None:
        _, reason, detail = _classify(call.excinfo)
        grading.outcomes.append(TestOutcome(item.nodeid, item_id, Status.ERROR, reason, detail))
    return report


def _grading(request: pytest.FixtureRequest) -> tuple[CheckSession, str]:
    grading = _session(request.config)
    item_id = _item_id(request.node)
    if grading is None or item_id is None:
        pytest.fail("this check runs only under the autograder (use --ag-submission)")
    return grading, item_id


@pytest.fixture
def nb(request: pytest.FixtureRequest) -> KernelChannel:
    """The channel to the live kernel of the notebook this item is graded from."""
    grading, item_id = _grading(request)
    channel = grading.channel_for(item_id)
    channel.used = []  # the bindings this check relies on, for its item's reason
    channel.touched = set()  # the names it reads, for a failed cell's mention
    return channel


@pytest.fixture
def assignment(request: pytest.FixtureRequest) -> Assignment:
    return _grading(request)[0].assignment


@pytest.fixture
def rubric_item(request: pytest.FixtureRequest) -> Item:
    grading, item_id = _grading(request)
    return grading.assignment.rubric.item(item_id)[1]


@pytest.fixture
def given(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The values the rubric declares for this item (question-level values included)."""
    grading, item_id = _grading(request)
    return grading.assignment.rubric.given(item_id)


@pytest.fixture
def tolerance(rubric_item: Item) -> Tolerance:
    return rubric_item.tolerance or DEFAULT_TOLERANCE


@pytest.fixture
def data(request: pytest.FixtureRequest) -> DataContext:
    """The run's datasets: ``data.source`` (trusted, with held-out labels) and ``data.view``
    (what kernels see); ``data.synthetic`` says whether they are stand-ins."""
    grading, _ = _grading(request)
    if grading.data is None:
        raise AssignmentError(f"{grading.assignment.id}: a check asks for data but the rubric lists no datasets")
    return grading.data


@pytest.fixture
def parameters(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The values the notebooks' parameters cells were given in this run."""
    return _grading(request)[0].parameters


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``measure(value, reference=None, name=None, note="")`` records a measured value."""
    grading, item_id = _grading(request)
    item = grading.assignment.rubric.item(item_id)[1]

    def record(value: float, *, reference: float | None = None, name: str | None = None, note: str = "") -> float:
        label = name or (item.metric.name if item.metric else "value")
        entry = Measurement(label, float(value), None if reference is None else float(reference), note)
        grading.measurements.setdefault(item_id, []).append(entry)
        return entry.value

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    grading = _session(config)
    if grading is None or not config.getoption("--ag-submission", None):
        return
    from .standalone import summary_lines

    terminalreporter.section("autograder")
    for line in summary_lines(grading):
        terminalreporter.write_line(line)
