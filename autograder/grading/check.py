"""Run an assignment's checks in-process against live kernels (the ``check`` stage)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from ..course.assignment import Assignment
from ..errors import AssignmentError, GraderError
from .outcomes import SESSION_KEY, CheckSession

_PLUGIN = "autograder.grading.pytest_plugin"


class _Carrier:
    """Hands the session to the plugin before collection starts."""

    def __init__(self, session: CheckSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[SESSION_KEY] = self.session


def pytest_args(session: CheckSession) -> list[str]:
    checks = session.assignment.checks_dir
    return [
        str(checks),
        "-c", os.devnull,  # the project's or course's own pytest settings do not apply
        "--rootdir", str(checks),
        "-p", _PLUGIN,
        "-p", "no:cacheprovider",  # nothing is written next to the checks
        "-p", "no:unraisableexception",  # its two full garbage collections per run cost half a second
        "--import-mode=importlib",
        "--capture=sys",
        "--tb=short",
        "-q",
    ]


def collect_problems(assignment: Assignment) -> list[str]:
    """Where an assignment's checks disagree with its rubric, without running anything."""
    if not assignment.checks_dir.is_dir():
        return [f"no checks folder {assignment.checks_dir}"]
    session = CheckSession(assignment)
    code, log = _pytest(session, "--collect-only")
    problems = list(session.problems)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) and not problems:
        problems.append(f"collecting the checks failed:\n{log[-2000:]}")
    return problems


def _pytest(session: CheckSession, *extra: str) -> tuple[int, str]:
    """Run pytest in-process with only this project's plugin; return its exit code and log.

    Check modules are imported afresh each run and forgotten after it: pytest reuses any
    module already imported under the same name, and two assignments (or two versions of
    one) may both have a ``check_q1.py``.
    """
    checks = session.assignment.checks_dir.resolve()
    before = set(sys.modules)
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no stray plugin changes grading
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = pytest.main([*pytest_args(session), *extra], plugins=[_Carrier(session)])
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).resolve().is_relative_to(checks):
                del sys.modules[name]
    return int(code), log.getvalue()


def run_checks(session: CheckSession) -> str:
    """Run the checks; fill ``session`` with outcomes and measurements; return pytest's log."""
    if not session.assignment.checks_dir.is_dir():
        raise AssignmentError(f"{session.assignment.id} has no checks folder {session.assignment.checks_dir}")
    code, text = _pytest(session)
    if "error during collection" in text or "errors during collection" in text:
        raise AssignmentError(f"a check file of {session.assignment.id} does not import:\n{text[-2000:]}")
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if session.problems:
        listed = "\n".join(f"  - {p}" for p in session.problems)
        raise AssignmentError(f"the checks of {session.assignment.id} do not match its rubric:\n{listed}")
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) or (
        code == pytest.ExitCode.NO_TESTS_COLLECTED and session.selected_items
    ):
        raise GraderError(f"the checks of {session.assignment.id} could not run:\n{text[-2000:]}")
    return text
