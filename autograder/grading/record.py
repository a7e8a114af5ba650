"""The grade record: what a submission earned, item by item, and every figure derived from it.

It is written once by the grader (``grade.json``, through ``Grade.to_record``) and read
back (``Grade.from_record``) by everything that shows a grade: the terminal tables, the
gradebook, the feedback pages, Gradescope's ``results.json``, the variants' proofs and
``verify``. The figures (automatic points, awaiting a marker, raw, penalty and final given
lateness) are methods here and nowhere else, so every reader gives the same totals.

Bonus items (of a rubric's bonus questions) are outside every maximum: their points are
added to what was earned, and with the policy's ``bonus_cap: total`` the sum is capped at
the maximum. The cap comes first and the late rule after it, on the capped points, so a
late submission cannot keep bonus points above the maximum.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from .moodle import Student

if TYPE_CHECKING:
    from ..course.rubric import Policy

SCHEMA = 1


class Word(str, Enum):
    """An enum whose members are their words: shown, formatted and stored as the value
    (``grade.json`` and the gradebook keep plain strings)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Status(Word):
    """What became of an item. The first four are automatic: a check ran (or should have)."""

    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"  # the grader's failure, not the student's: retried, then flagged for a marker
    MANUAL = "manual"  # marked by hand
    PLANNED = "planned"  # its question has no automatic check yet: marked by hand
    NOT_CHECKED = "not-checked"  # outside this run: hidden (markers only) or its notebook not given
    MARKED = "marked"  # a manual item a marker has given points to
    REFERRED = "referred"  # the grader could not find what to grade (another starter's names): a marker looks

    @property
    def automatic(self) -> bool:
        return self in _AUTOMATIC

    @property
    def awaiting(self) -> bool:
        """A person must mark it before the grade is complete: a manual item, or one the
        grader failed on (its points withheld for a marker's look, never scored 0)."""
        return self in (Status.MANUAL, Status.PLANNED, Status.ERROR, Status.REFERRED)


_AUTOMATIC = frozenset({Status.PASSED, Status.PARTIAL, Status.FAILED, Status.ERROR, Status.REFERRED})


class CellStatus(Word):
    """What became of one code cell when its notebook ran."""

    OK = "ok"
    ERROR = "error"  # it raised
    TIMEOUT = "timeout"  # stopped at the limit per cell
    DIED = "died"  # the kernel died in it
    SKIPPED = "skipped"  # not run: an earlier cell stopped the notebook


class Level(Word):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass
class Finding:
    """Something about the submission's files a marker or student should know."""

    level: Level | str  # stored as a Level
    file: str
    message: str

    def __post_init__(self) -> None:
        self.level = Level(self.level)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that are fields of ``cls`` (a record may come from a newer grader)."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass
class CellProblem:
    """A code cell that did not run cleanly."""

    cell: int
    status: CellStatus
    seconds: float = 0.0
    error: str = ""
    note: str = ""
    traceback_tail: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = CellStatus(self.status)


@dataclass
class NotebookSummary:
    notebook: str
    seconds: float = 0.0
    code_cells: int = 0
    problem: str = ""
    truncated_output_cells: list[int] = field(default_factory=list)
    cells_not_ok: list[CellProblem] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # the root causes of its failed cells, each once

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> NotebookSummary:
        known = _known(cls, data)
        known["cells_not_ok"] = [CellProblem(**_known(CellProblem, c)) for c in data.get("cells_not_ok", [])]
        return cls(**known)

    @property
    def stopped(self) -> list[CellProblem]:
        """Cells that ran into a fault (not the ones left unrun after it)."""
        return [cell for cell in self.cells_not_ok if cell.status is not CellStatus.SKIPPED]

    @property
    def own_faults(self) -> list[CellProblem]:
        """Stopped cells that do not merely follow from an earlier cause (see ``causes``)."""
        return [cell for cell in self.stopped if not cell.note.startswith(FOLLOWS)]


#: How a failed cell's note begins when it failed only because of an earlier cell's fault.
FOLLOWS = "because of "


@dataclass
class ItemGrade:
    id: str
    question: str
    title: str
    kind: str
    visibility: str
    max_points: float
    points: float | None
    status: Status
    reason: str = ""
    detail: list[str] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, str]] = field(default_factory=list)
    bonus: bool = False  # of a bonus question: outside the maximum, its points added to the earned total
    bound: list[str] = field(default_factory=list)  # the student's objects graded under the template's names

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ItemGrade:
        known = {"question": "", "title": "", "kind": "auto", "visibility": "public", "points": None,
                 **_known(cls, data)}
        known["status"] = Status(known["status"])
        return cls(**known)

    @property
    def earned(self) -> float:
        return self.points or 0.0

    @property
    def missed(self) -> bool:
        """Given points, but fewer than its maximum."""
        return self.points is not None and self.points < self.max_points - 1e-9

    def measured(self, name: str) -> dict[str, Any] | None:
        """The last measurement of ``name`` a check recorded for the item."""
        values = [m for m in self.measurements if m.get("name") == name and m.get("value") is not None]
        return values[-1] if values else None


def _sum(values: Any) -> float:
    return round(math.fsum(values), 6)


@dataclass(frozen=True)
class Late:
    """How late a submission was and what that costs."""

    submitted: str = ""  # ISO time the submission was last modified; empty when unknown
    due: str = ""  # ISO due time after any extension; empty when the rubric has none
    days: int = 0  # whole days late, rounded up; 0 when on time or unknown
    penalty: float = 0.0  # points taken off
    not_assessed: bool = False  # later than the policy's cut-off: the grade is 0
    note: str = ""  # the sentence a student reads, e.g. "2 days late: 20% of the maximum deducted"


def lateness(policy: Policy, *, submitted: datetime | None, due: datetime | None, maximum: float,
             raw: float) -> Late:
    """What the course's policy makes of a submission handed in at ``submitted``.

    Days late are whole days, rounded up: one minute late is one day. ``deduct`` takes the
    policy's fraction of the maximum off per day; ``cap`` caps the grade at (1 - fraction x
    days) of the maximum. Beyond ``not_assessed_after_days`` the submission is not assessed.
    """
    if submitted is None or due is None:
        why = "" if due is None else "submission time unknown: no late penalty applied"
        return Late(submitted=submitted.isoformat() if submitted else "", due=due.isoformat() if due else "",
                    note=why)
    base = Late(submitted=submitted.isoformat(), due=due.isoformat())
    seconds = (submitted - due).total_seconds()
    if seconds <= 0:
        return base
    days = math.ceil(seconds / 86400)
    cutoff = policy.not_assessed_after_days
    if cutoff is not None and days > cutoff:
        return replace(base, days=days, penalty=raw, not_assessed=True,
                       note=f"{days} days late: more than {cutoff} days late is not assessed")
    fraction = min(1.0, policy.late_penalty_per_day * days)
    if policy.late_rule == "cap":
        ceiling = maximum * (1 - fraction)
        penalty = max(0.0, raw - ceiling)
        rule = f"the grade is capped at {1 - fraction:.0%} of the maximum ({ceiling:g})"
    else:
        penalty = min(raw, fraction * maximum)
        rule = f"{fraction:.0%} of the maximum ({fraction * maximum:g} points) deducted"
    plural = "day" if days == 1 else "days"
    return replace(base, days=days, penalty=round(penalty, 6), note=f"{days} {plural} late: {rule}")


@dataclass
class Grade:
    """One submission's grade. ``to_record``/``from_record`` are ``grade.json``."""

    assignment: str
    submission: str
    items: list[ItemGrade]
    notebooks: list[NotebookSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    public_only: bool = False
    problem: str = ""  # why nothing could be graded, if so
    # where the grade came from; set when it is written
    source: str = ""
    digest: str = ""
    graded_at: str = ""
    grader_version: str = ""
    sandbox: dict[str, Any] = field(default_factory=dict)
    student: Student | None = None
    bonus_cap: str = "total"  # the policy's: total (earned points capped at the maximum) or none
    bindings: dict[str, str] = field(default_factory=dict)  # names a marker bound for this submission

    # -- the figures, defined once

    @property
    def counted(self) -> list[ItemGrade]:
        """The items the maximum is made of: every item but the bonus ones."""
        return [item for item in self.items if not item.bonus]

    @property
    def bonus(self) -> list[ItemGrade]:
        return [item for item in self.items if item.bonus]

    @property
    def automatic(self) -> list[ItemGrade]:
        return [item for item in self.items if item.status.automatic]

    @property
    def awaiting(self) -> list[ItemGrade]:
        """Items a person must still mark (manual, of a planned question, or failed on by the
        grader, with no marks yet)."""
        return [item for item in self.items if item.status.awaiting]

    @property
    def not_checked(self) -> list[ItemGrade]:
        return [item for item in self.items if item.status is Status.NOT_CHECKED]

    @property
    def auto_points(self) -> float:
        """Points the checks gave, bonus items left out (they are ``bonus_points``)."""
        return _sum(item.earned for item in self.automatic if not item.bonus)

    @property
    def auto_max(self) -> float:
        """The points the checks scored (items the grader failed on are awaiting a marker), bonus left out."""
        return _sum(item.max_points for item in self.automatic if not item.status.awaiting and not item.bonus)

    @property
    def awaiting_marker(self) -> float:
        """Points of items awaiting a marker, bonus items left out (they are ``bonus_awaiting``)."""
        return _sum(item.max_points for item in self.awaiting if not item.bonus)

    @property
    def total_max(self) -> float:
        """The maximum: every item's points but the bonus items'."""
        return _sum(item.max_points for item in self.counted)

    @property
    def bonus_points(self) -> float:
        """Points earned on bonus items, before any cap."""
        return _sum(item.earned for item in self.bonus)

    @property
    def bonus_max(self) -> float:
        return _sum(item.max_points for item in self.bonus)

    @property
    def bonus_awaiting(self) -> float:
        """Points of bonus items awaiting a marker."""
        return _sum(item.max_points for item in self.awaiting if item.bonus)

    @property
    def earned(self) -> float:
        """Every point earned, bonus included, before the cap and any penalty."""
        return _sum(item.earned for item in self.items)

    def capped(self, maximum: float) -> float:
        """The points earned with bonus points capped at ``maximum`` (``bonus_cap: total``):
        the bonus never takes the grade above it, nor does the cap take off points earned
        on the items the maximum is made of."""
        if self.bonus_cap != "total":
            return self.earned
        base = _sum(item.earned for item in self.counted)
        return round(min(self.earned, max(maximum, base)), 6)

    @property
    def raw(self) -> float:
        """Points earned before any penalty: automatic points and marks a marker entered,
        bonus points included and capped at the maximum per the policy."""
        return self.capped(self.total_max)

    def _maximum(self, automatic_only: bool) -> float:
        return self.auto_max if automatic_only else self.total_max

    def question_points(self, question_id: str) -> float:
        return _sum(item.earned for item in self.items if item.question == question_id)

    def totals(self) -> dict[str, float]:
        totals = {
            "auto_points": self.auto_points,
            "auto_max": self.auto_max,
            "awaiting_marker": self.awaiting_marker,
            "max": self.total_max,
        }
        if self.bonus:
            totals.update(bonus_points=self.bonus_points, bonus_max=self.bonus_max)
        return totals

    def late(self, policy: Policy, *, submitted: datetime | None, due: datetime | None,
             automatic_only: bool = False) -> Late:
        """The late penalty on this grade; ``automatic_only``: the maximum the penalty is a
        fraction of, and the bonus cap, is the automatic items' (where only they are scored,
        as on Gradescope). The penalty is on the capped points: the cap comes first."""
        maximum = self._maximum(automatic_only)
        return lateness(policy, submitted=submitted, due=due, maximum=maximum, raw=self.capped(maximum))

    def final(self, late: Late, *, automatic_only: bool = False) -> float:
        """The grade: the capped points less the late penalty (0 when not assessed);
        ``automatic_only`` as for ``late``."""
        raw = self.capped(self._maximum(automatic_only))
        return 0.0 if late.not_assessed else round(max(0.0, raw - late.penalty), 6)

    def with_marks(self, marks: dict[str, float] | None) -> Grade:
        """This grade with a marker's points for items awaiting a marker."""
        if not marks:
            return self
        items = [replace(item, points=marks[item.id], status=Status.MARKED, reason="marked by a marker")
                 if item.id in marks and item.points is None else item for item in self.items]
        return replace(self, items=items)

    # -- grade.json

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        for item in record["items"]:
            item["status"] = str(item["status"])
        for finding in record["findings"]:
            finding["level"] = str(finding["level"])
        record.update(schema=SCHEMA, totals=self.totals())
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Grade:
        """A grade from ``grade.json``; fields a record lacks take their defaults."""
        known = _known(cls, record)
        known.setdefault("assignment", "")
        known.setdefault("submission", "")
        known["items"] = [ItemGrade.from_record(item) for item in record.get("items", [])]
        known["notebooks"] = [NotebookSummary.from_record(n) for n in record.get("notebooks", [])]
        known["findings"] = [Finding(**_known(Finding, f)) for f in record.get("findings", [])]
        known["sandbox"] = record.get("sandbox") or {}
        student = record.get("student")
        known["student"] = (Student(student["participant"], student["name"], bool(student.get("team")),
                                    tuple(student.get("members", ()))) if student else None)
        return cls(**known)
