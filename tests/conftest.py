"""Shared helpers: notebooks built in code, the toy assignment, the real command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course.assignment import Assignment, load_assignment
from autograder.data.context import CACHE_ENV
from autograder.grading.execute import LiveNotebook, execute_notebook
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission
from autograder.grading.record import Grade
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


TOYNET = ROOT / "tests" / "assignments" / "toynet"


def toynet_with(folder: Path, check_name: str, check: str, items: str, points: float) -> Assignment:
    """A copy of the toy network assignment at ``folder`` with the check file ``check_name``
    and ``items`` (YAML lines, indented as the question's items) after its last item; its
    question and total raised to ``points``."""
    shutil.copytree(TOYNET, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "checks" / check_name).write_text(check, encoding="utf-8")
    text = (folder / "rubric.yaml").read_text(encoding="utf-8")
    text, one = re.subn(r"(?m)^total_points: 10$", f"total_points: {points:g}", text)
    text, two = re.subn(r"(?m)^    points: 10$", f"    points: {points:g}", text)
    text, three = re.subn(r"(?m)(^            - \{threshold: 0\.6, fraction: 0\.5\}\n)",
                          lambda found: found.group(1) + items, text)
    assert (one, two, three) == (1, 1, 1), "the toy assignment's rubric changed: update toynet_with"
    (folder / "rubric.yaml").write_text(text, encoding="utf-8")
    return load_assignment(folder)


def grade_toynet(target: Assignment, folder: Path, cell: str) -> tuple[dict[str, tuple[str, float | None, str]], Grade]:
    """The toy solution with ``cell`` after it, graded for real (synthetic data, local
    sandbox) into ``folder``'s sibling results/: each item's (status, points, reason)."""
    from .assignments.toynet.solution import CELLS as TOYNET_CELLS

    write_notebook(folder / "toynet.ipynb", *TOYNET_CELLS, cell, parameters='DATA_DIR = "data"')
    opened = open_submission(folder)
    try:
        grade = grade_submission(target, opened, options=GradeOptions(synthetic=True), sandbox=LocalSandbox(),
                                 out=folder.parent / "results" / folder.name)
    finally:
        opened.close()
    return {item.id: (str(item.status), item.points, item.reason or "") for item in grade.items}, grade


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
