"""Shared helpers: notebooks built in code, the toy assignment, the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course.assignment import Assignment, load_assignment
from autograder.data.context import CACHE_ENV
from autograder.grading.execute import LiveNotebook, execute_notebook
from autograder.sandboxes.sandbox import LocalSandbox, Place, private_dir

from .assignments.trivial.solution import CELLS, notebook, write_notebook  # noqa: F401 (re-exported)

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # With pytest-xdist each worker's kernels get their share of the cores, not all of
    # them each (PyTorch would run as many threads per kernel as there are cores).
    share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(share))

pytest_plugins = ["pytester"]  # the plugin's rules are tested with pytester (tests/test_plugin.py)

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"

TRIVIAL_CELLS = CELLS


def start_live(nb, workdir: Path, *, name: str = "test.ipynb", **limits) -> LiveNotebook:
    """Execute ``nb`` in the local sandbox and return it with its kernel alive."""
    sandbox = LocalSandbox(isolate=False)
    place = Place(workdir=workdir, cwd=workdir, private=private_dir())
    settings = {"cell_timeout": 20, "total_timeout": 120, "max_output_bytes": 100_000, **limits}
    return execute_notebook(
        nb,
        name=name,
        manager=sandbox.kernel_manager(place),
        cwd=workdir,
        env=sandbox.kernel_env(place),
        **settings,
    )


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real ``autograder`` command, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "autograder", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="session", autouse=True)
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic datasets are generated once per test session, outside the user's cache;
    with pytest-xdist, once for all the workers (the cache's lock makes them wait for it)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "autograder-cache"  # the run's, shared by its workers
    else:
        folder = tmp_path_factory.mktemp("autograder-cache")
    os.environ[CACHE_ENV] = str(folder)  # the command-line processes the tests start inherit it
    # the grader's own failures are tried again; in tests, after short pauses (the batches they start inherit it)
    os.environ.setdefault("AUTOGRADER_RETRY_WAITS", "1,1")
    return folder


@pytest.fixture
def trivial() -> Assignment:
    return load_assignment(TRIVIAL)


def trivial_copy(folder: Path, **rubric_extra: object) -> Path:
    """A copy of the toy assignment with more top-level rubric fields (a late policy, ...)."""
    (folder / "checks").mkdir(parents=True)
    for source in (TRIVIAL / "checks").glob("*.py"):
        (folder / "checks" / source.name).write_bytes(source.read_bytes())
    extra = "".join(f"{key}: {json.dumps(value, default=str)}\n" for key, value in rubric_extra.items())
    (folder / "rubric.yaml").write_text((TRIVIAL / "rubric.yaml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return folder


MATRIX = "tests/test_assignments.py::test_grading_loses_exactly_the_broken_items["


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The course matrix's cost per assignment (each reference and variant graded), so the
    cost of every assignment is visible at every landing; the budget is in the README."""
    cases: dict[str, dict[str, float]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if not nodeid.startswith(MATRIX) or getattr(report, "when", None) not in ("setup", "call", "teardown"):
                continue
            case = nodeid.removeprefix(MATRIX).removesuffix("]")
            per_case = cases.setdefault(case.split(":", 1)[0], {})
            per_case[case] = per_case.get(case, 0.0) + report.duration
    if not cases:
        return
    terminalreporter.section("course matrix: seconds per assignment (summed over workers)")
    for assignment, times in sorted(cases.items()):
        slowest = max(times, key=lambda case: times[case])
        terminalreporter.write_line(f"{assignment}: {len(times)} gradings, {sum(times.values()):.0f} s; "
                                    f"slowest {slowest.split(':', 1)[1]} {times[slowest]:.0f} s")
