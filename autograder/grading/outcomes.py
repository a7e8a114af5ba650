"""What a check run needs and what it produces, shared by the check and score stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..course.assignment import Assignment
from ..data.context import DataContext
from ..errors import NotebookMissing
from .channel import KernelChannel
from .execute import NotebookRun
from .record import Finding, Status


@dataclass
class Measurement:
    name: str
    value: float
    reference: float | None = None
    note: str = ""


@dataclass
class TestOutcome:
    nodeid: str
    item_id: str
    status: Status  # passed, failed or error
    reason: str = ""
    detail: list[str] = field(default_factory=list)
    bound: list[str] = field(default_factory=list)  # what the check graded under the template's names


@dataclass
class CheckSession:
    """One submission on its way through the check and score stages: the live kernels the
    checks probe, and everything the checks and earlier stages found."""

    assignment: Assignment
    submission: str = ""
    channels: dict[str, KernelChannel] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # notebook -> why it cannot be probed
    public_only: bool = False
    only_notebooks: set[str] = field(default_factory=set)  # empty: every notebook of the rubric
    only_questions: set[str] = field(default_factory=set)  # empty: every question of those notebooks
    data: DataContext | None = None  # datasets: trusted source and the kernels' view
    parameters: dict[str, Any] = field(default_factory=dict)  # what each parameters cell was given
    runs: list[NotebookRun] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    outcomes: list[TestOutcome] = field(default_factory=list)
    measurements: dict[str, list[Measurement]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the checks disagree with the rubric
    selected_items: set[str] = field(default_factory=set)
    on_teardown: list[Callable[[], None]] = field(default_factory=list)

    def notebook_of(self, item_id: str) -> str | None:
        rubric = self.assignment.rubric
        return rubric.notebook_for(rubric.item(item_id)[0].id)

    def in_scope(self, item_id: str) -> bool:
        """Whether this run grades the item: public if only public, its notebook and its
        question selected."""
        question, item = self.assignment.rubric.item(item_id)
        if self.public_only and item.visibility != "public":
            return False
        if self.only_questions and question.id not in self.only_questions:
            return False
        return not self.only_notebooks or self.notebook_of(item_id) in self.only_notebooks

    def channel_for(self, item_id: str) -> KernelChannel:
        rubric = self.assignment.rubric
        question, _ = rubric.item(item_id)
        notebook = rubric.notebook_for(question.id)
        if notebook is None:
            raise NotebookMissing(f"no notebook is assigned to question {question.id} in the rubric")
        if notebook in self.channels:
            return self.channels[notebook]
        raise NotebookMissing(self.unavailable.get(notebook, f"{notebook} was not submitted"))


#: Where a pytest run of the checks finds the session it checks (the plugin reads it).
SESSION_KEY: pytest.StashKey[CheckSession] = pytest.StashKey()
