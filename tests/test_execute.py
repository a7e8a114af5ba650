"""Execution on a real kernel: nbgrader's defaults, limits, and the kernel kept alive."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.grading.channel import KernelChannel
from autograder.grading.execute import MARKER, LiveNotebook

from .conftest import notebook, start_live


@pytest.fixture
def live_run(tmp_path: Path):
    opened: list[LiveNotebook] = []

    def start(nb, **limits) -> LiveNotebook:
        opened.append(start_live(nb, tmp_path, **limits))
        return opened[-1]

    yield start
    for live in opened:
        live.shutdown()


def statuses(live: LiveNotebook) -> list[str]:
    return [cell.status for cell in live.run.cells]


def test_errors_do_not_stop_the_notebook_and_stderr_is_not_an_error(live_run):
    live = live_run(
        notebook(
            "import sys\nprint('progress 50%', file=sys.stderr)",
            "raise ValueError('boom')",
            "after = 1",
        )
    )
    assert statuses(live) == ["ok", "error", "ok"]
    failed = live.run.cells[1]
    assert (failed.ename, failed.evalue) == ("ValueError", "boom")
    assert any("ValueError: boom" in line for line in failed.traceback)
    assert KernelChannel(live, timeout=10).get("after") == 1


def test_a_cell_past_its_limit_is_interrupted_and_marked(live_run):
    live = live_run(notebook("import time\nwhile True:\n    time.sleep(0.05)", "after = 2"), cell_timeout=2)
    assert statuses(live) == ["timeout", "ok"]
    timed_out = live.nb.cells[0]
    assert timed_out.metadata["autograder"]["status"] == "timeout"
    markers = [o.get("text", "") for o in timed_out.outputs if MARKER in o.get("text", "")]
    assert markers and "2 s (per-cell time limit)" in markers[0]
    assert KernelChannel(live, timeout=10).get("after") == 2


def test_the_total_limit_skips_the_rest(live_run):
    live = live_run(notebook("import time\ntime.sleep(30)", "late = 1"), cell_timeout=20, total_timeout=3)
    assert statuses(live) == ["timeout", "skipped"]
    assert "total time limit" in live.run.cells[0].note
    assert "total time limit" in live.run.problem


def test_huge_output_is_cut_with_a_marker(live_run):
    live = live_run(notebook("for i in range(20000):\n    print('x' * 100)", "done = True"), max_output_bytes=10_000)
    kept = "".join(o.get("text", "") for o in live.nb.cells[0].outputs)
    assert len(kept) < 20_000 and "output cut" in kept
    assert live.run.truncated_cells == [1]
    assert statuses(live) == ["ok", "ok"]


def test_parameters_are_injected_after_the_parameters_cell(live_run):
    live = live_run(notebook("value = EPOCHS * 2", parameters="EPOCHS = 100"), parameters={"EPOCHS": 3})
    assert KernelChannel(live, timeout=10).get("value") == 6
    tags = [cell.metadata.get("tags", []) for cell in live.nb.cells]
    assert tags[1] == ["injected-parameters"]
    assert [cell.number for cell in live.run.cells] == [1, 2]  # the injected cell is not the student's


def test_cells_are_numbered_as_the_traceback_numbers_them(live_run):
    nb = notebook("x = 1", "y = x + 1", "z = undefined_name", parameters="EPOCHS = 100")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("## a heading the student wrote"))
    nb.cells.insert(3, nbformat.v4.new_code_cell(""))  # empty: not run, not counted
    live = live_run(nb, parameters={"EPOCHS": 3})
    failed = live.run.cells[-1]
    assert (failed.number, failed.label) == (4, "code cell 4")  # the parameters cell is code cell 1
    assert failed.summary() == "code cell 4 failed with NameError: name 'undefined_name' is not defined"
    assert any("In[4]" in line for line in failed.traceback), failed.traceback
    counts = [cell.get("execution_count") for cell in live.nb.cells if cell.cell_type == "code" and cell.source]
    assert counts[-3:] == [2, 3, 4]


def test_a_name_defined_in_a_cell_that_did_not_finish_says_which(live_run):
    live = live_run(notebook("import time", "def slow():\n    pass\ntime.sleep(30)\nw = 1", "v = w"),
                    cell_timeout=3)
    assert live.run.hint_for("w") == "it is defined in code cell 2, which was stopped after 3 s (per-cell time limit)"
    failed = "it is defined in code cell 3, which failed with NameError: name 'w' is not defined"
    assert live.run.hint_for("v") == failed
    assert live.run.hint_for("nowhere") == "no cell of the notebook defines it"


def test_a_dead_kernel_is_reported_and_a_fresh_one_goes_on_without_its_cell_once(live_run):
    """The cells before the one that died run again in a fresh kernel (x is there for the
    cell after it); a second death ends the run, and the rest is skipped."""
    live = live_run(notebook("x = 1", "import os\nos._exit(3)", "y = x + 1", "import os\nos._exit(3)", "z = 3"))
    assert statuses(live) == ["ok", "died", "ok", "died", "skipped"]
    assert "died" in live.run.problem and live.run.revived == 2
    assert "a fresh kernel re-ran the cells before it" in live.run.cells[1].note


def test_a_kernel_that_cannot_start_is_a_notebook_problem(tmp_path: Path):
    (tmp_path / "ipykernel_launcher.py").write_text("raise SystemExit(1)\n", encoding="utf-8")
    live = start_live(notebook("x = 1"), tmp_path)
    assert "could not start" in live.run.problem
    assert live.run.cells == []


def test_a_missing_name_is_said_unanswered_where_the_templates_placeholder_is_left_and_never_another_answer():
    """A name a check reads, missing because the template's cell still holds its `...`, is
    said to be unanswered (not "is `deep_mlp` meant?"); a close name offered is never one
    another item grades."""
    from autograder.grading.execute import CellRun, NotebookRun
    from autograder.grading.record import CellStatus

    sources = ["deep_mlp = make_deep()", "...\nhistory_wide = train(wide_mlp)", "depth = 3"]
    run = NotebookRun(name="n.ipynb", cells=[CellRun(i + 1, CellStatus.OK, source=s) for i, s in enumerate(sources)],
                      answers=frozenset({"deep_mlp", "wide_mlp"}))
    assert run.hint_for("wide_mlp") == "it was not answered: code cell 2 uses it and still holds the template's `...`"
    assert run.hint_for("deep_mlps") == "no cell of the notebook defines it"  # deep_mlp is 3.1's answer
    assert run.hint_for("depths") == "no cell of the notebook defines it (is `depth` meant?)"
