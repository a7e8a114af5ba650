"""Direct runs of an assignment's checks with plain pytest, for course staff:

    pytest rubrics/<id>/checks --ag-submission path/to/notebook-or-zip

The plugin executes the submission before collection, the checks run as usual, and
the terminal summary ends with the grade table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..course.assignment import Assignment, load_assignment
from .outcomes import CheckSession
from .pipeline import GradeOptions, open_run, start
from .preflight import notebooks_given
from .report import render_text
from .score import score


def _assignment_for(config: pytest.Config) -> Assignment:
    ref = config.getoption("--ag-assignment")
    if ref:
        return load_assignment(ref)
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        for folder in (path, *path.parents):
            if (folder / "rubric.yaml").is_file():
                return Assignment(folder / "rubric.yaml")
    raise pytest.UsageError("--ag-submission needs --ag-assignment, or pytest run on an assignment's checks folder")


def start_session(config: pytest.Config, path: str) -> CheckSession:
    """Execute the submission for the checks: one notebook stands for the items graded from
    it; datasets come from ``--ag-data DIR``, else from small synthetic stand-ins."""
    assignment = _assignment_for(config)
    target = Path(path)
    notebooks = notebooks_given(assignment.rubric, target)
    data_dir = config.getoption("--ag-data", None)
    options = GradeOptions(public_only=bool(config.getoption("--ag-public-only")), notebooks=notebooks,
                           data_dir=Path(data_dir) if data_dir else None, synthetic=not data_dir)
    run = open_run(assignment, target, options=options)
    try:
        started = start(assignment, run.submission, options=options, data=run.data,
                        sandbox=config.getoption("--ag-sandbox", None) or "auto")
    except BaseException:
        run.close()
        raise
    started.session.on_teardown.extend([started.close, run.close])
    return started.session


def summary_lines(session: CheckSession) -> list[str]:
    lines = render_text(score(session)).splitlines()
    if session.data is not None and session.data.synthetic:
        lines.insert(0, "the notebooks ran on small synthetic stand-ins of the datasets (--ag-data DIR: the course's)")
    return lines
