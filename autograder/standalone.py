"""Direct runs of an assignment's checks with plain pytest, for course staff:

    pytest rubrics/<id>/checks --ag-submission path/to/notebook-or-zip

The plugin executes the submission before collection, the checks run as usual, and
the terminal summary ends with the grade table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .assignment import Assignment, load_assignment
from .intake import open_submission
from .outcomes import CheckSession
from .pipeline import GradeOptions, start
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
    assignment = _assignment_for(config)
    submission = open_submission(Path(path))
    options = GradeOptions(public_only=bool(config.getoption("--ag-public-only")))
    try:
        started = start(assignment, submission, options=options)
    except BaseException:
        submission.close()
        raise
    started.session.on_teardown.extend([started.close, submission.close])
    return started.session


def summary_lines(session: CheckSession) -> list[str]:
    return render_text(score(session)).splitlines()
