"""The rubric: the handout's points, how each item is graded, and the course's policy.

A rubric is YAML validated into these typed models. Every validation problem is
reported with the file, the question and item ids, and the field that is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data import DATASETS
from ..data.npz import NpzSpec
from ..data.stl10 import SplitSpec
from ..errors import RubricError
from ..sandboxes import resources as kernel

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerance(_Strict):
    """How far a numeric answer may be from the grader's value: |got - want| <= abs + rel*|want|.

    In a rubric, ``why`` is required: the precision the handout asks for (decimals of a
    hand calculation, "about", float32 arithmetic, a numerical guard) that the numbers follow.
    """

    abs: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)
    why: str = ""

    def allows(self, got: float, want: float) -> bool:
        if math.isnan(got) or math.isnan(want):
            return False
        return abs(got - want) <= self.abs + self.rel * abs(want)

    def describe(self) -> str:
        parts = [f"±{self.abs:g}" if self.abs else "", f"±{self.rel:.3g} relative" if self.rel else ""]
        return " and ".join(p for p in parts if p) or "exactly"


class Band(_Strict):
    """Reaching ``threshold`` earns ``fraction`` of the item's points."""

    threshold: float
    fraction: float = Field(gt=0, le=1)


class Metric(_Strict):
    """A measured quantity scored by bands (e.g. accuracy >= 0.89 full, >= 0.85 half)."""

    name: str = Field(pattern=_ID)
    direction: Literal["higher", "lower"]
    bands: list[Band] = Field(min_length=1)
    relative_to: Literal["reference"] | None = Field(
        default=None,
        description="thresholds are margins over the reference value the check records",
    )
    tolerance: float = Field(default=0.0, ge=0, description="slack for nondeterminism")
    unit: str = ""

    @model_validator(mode="after")
    def _bands_in_order(self) -> Metric:
        if self.bands[0].fraction != 1.0:
            raise ValueError("the first (strictest) band must give fraction 1.0")
        for strict, lenient in zip(self.bands, self.bands[1:]):
            looser = (
                lenient.threshold < strict.threshold
                if self.direction == "higher"
                else lenient.threshold > strict.threshold
            )
            if not looser or lenient.fraction >= strict.fraction:
                raise ValueError(
                    "bands must go from strictest to most lenient, with falling fractions"
                )
        return self

    def effective_threshold(self, band: Band, reference: float | None) -> float:
        base = band.threshold
        if self.relative_to == "reference":
            if reference is None:
                raise ValueError(f"metric {self.name} is relative to a reference, none recorded")
            base = reference + base if self.direction == "lower" else reference - base
        return base - self.tolerance if self.direction == "higher" else base + self.tolerance

    def needs(self, reference: float | None = None) -> str:
        """What each band asks, e.g. 'needs ≥ 0.9 for full marks, ≥ 0.6 for 50%': the one
        sentence of the bands every page and report shows."""
        sign = "≥" if self.direction == "higher" else "≤"
        unit = f" {self.unit}" if self.unit else ""
        parts = []
        for band in self.bands:
            earns = "full marks" if band.fraction == 1.0 else f"{band.fraction:.0%}"
            if self.relative_to == "reference" and reference is None:
                side = "above" if self.direction == "lower" else "below"
                parts.append(f"at most {band.threshold:g}{unit} {side} the reference for {earns}")
            else:
                parts.append(f"{sign} {round(self.effective_threshold(band, reference), 6):g}{unit} for {earns}")
        return "needs " + ", ".join(parts)

    def fraction_for(self, value: float, reference: float | None) -> tuple[float, Band | None]:
        """The fraction of points ``value`` earns and the band it reached (None: no band)."""
        if math.isnan(value):
            return 0.0, None
        for band in self.bands:
            limit = self.effective_threshold(band, reference)
            if (value >= limit) if self.direction == "higher" else (value <= limit):
                return band.fraction, band
        return 0.0, None


class Item(_Strict):
    """One scored line of the rubric."""

    id: str = Field(pattern=_ID)
    title: str
    points: float = Field(gt=0)
    kind: Literal["auto", "manual"] = "auto"
    visibility: Literal["public", "hidden"] = "public"
    tolerance: Tolerance | None = None
    metric: Metric | None = None
    given: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _auto_only_fields(self) -> Item:
        if self.kind == "manual" and (self.metric or self.tolerance):
            raise ValueError("a manual item has no metric or tolerance (a marker scores it)")
        if self.tolerance is not None and len(self.tolerance.why.strip()) < 10:
            raise ValueError("a tolerance says `why`: the precision the handout asks for that it follows "
                             "(decimals of a hand calculation, 'about', float32 arithmetic, a log guard)")
        return self


_PYTHON_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class NameSpec(_Strict):
    """What a name the checks read must be, so that the grader can find the student's object
    when the template's name is not there (students follow the course's starter, which
    prescribes no result variables): tried in order, a marker's binding for the submission,
    the template's name, each alias (a name, or a pattern with ``*`` matched against the
    object's name and its class's name, case aside), then, for modules and optimisers, the
    one object of the notebook that fits by kind and behaviour. Numbers and other values
    are bound by name only, never by value."""

    kind: Literal["module", "function", "optimizer", "value"] = Field(
        description="module: a torch.nn.Module mapping `input` to `output`; function: something callable with "
                    "`args` positional arguments; optimizer: a torch optimiser, of the parameters of `of`; "
                    "value: a number, an array or any other object (bound by name only)")
    about: str = Field(min_length=3, description="what it is, in the handout's words (shown to markers)")
    aliases: list[str] = Field(default_factory=list, description="names students give it, or patterns with `*`")
    input: list[list[int]] = Field(default_factory=list, description="module: shapes of one input (without the "
                                   "batch) it may take, e.g. [[784], [1, 28, 28]]; empty: not tried by behaviour")
    output: int | None = Field(default=None, gt=0, description="module: the number of values of one output")
    params: int | None = Field(default=None, gt=0, description="module: the handout's parameter count, which "
                               "decides between modules that fit alike")
    args: int | None = Field(default=None, ge=0, description="function: the positional arguments it is called with")
    of: str | None = Field(default=None, pattern=_PYTHON_NAME, description="optimizer: the declared module whose "
                           "parameters it updates")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not re.fullmatch(r"[A-Za-z0-9_*]+", alias):
                raise ValueError(f"alias {alias!r}: a Python name, or one with * for any characters")
        return value

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> NameSpec:
        fields = {"input": "module", "output": "module", "params": "module", "args": "function", "of": "optimizer"}
        for field, kind in fields.items():
            if getattr(self, field) not in (None, []) and self.kind != kind:
                raise ValueError(f"{field} is for a {kind}, not a {self.kind}")
        if self.kind == "module" and bool(self.input) != (self.output is not None):
            raise ValueError("a module found by behaviour needs both input and output")
        return self


class Question(_Strict):
    """A question of the handout, with the points its table gives."""

    id: str = Field(pattern=_ID)
    title: str
    points: float = Field(gt=0)
    status: Literal["ready", "planned"] = Field(
        default="ready", description="planned: listed with its points, checks still to come"
    )
    bonus: bool = Field(
        default=False, description="a bonus question: outside total_points, its points added to the earned "
                                   "total (capped per policy.bonus_cap)",
    )
    given: dict[str, Any] = Field(default_factory=dict)
    names: dict[str, NameSpec] = Field(default_factory=dict, description="what each name its checks read must "
                                       "be, for finding the student's object when the template's name is absent")
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _items_add_up(self) -> Question:
        total = sum(item.points for item in self.items)
        if not math.isclose(total, self.points, abs_tol=1e-9):
            raise ValueError(f"item points add up to {total:g} but the question is worth {self.points:g}")
        return self


class NotebookSpec(_Strict):
    file: str = Field(pattern=r"^[^/\\]+\.ipynb$")
    questions: list[str] = Field(min_length=1)
    datasets: list[str] = Field(
        default_factory=list, description="datasets this notebook reads from its data folder: a module of "
                                          "autograder/data/ or one the rubric declares under npz:",
    )


class FileRules(_Strict):
    """The handout's rules on what is handed in; breaking one is a finding, not lost points."""

    archive: str | None = Field(default=None, description="regular expression the submitted zip's name must match")
    archive_example: str = Field(default="", description="a name that follows the rule, shown to students")
    forbidden: list[str] = Field(default_factory=list, description="file types that are not assessed, e.g. .docx")
    required: list[str] = Field(default_factory=list, description="file types that must be there, e.g. .pdf")
    html_export: bool = Field(default=False, description="each notebook must come with its HTML export")
    outputs_saved: bool = Field(default=False, description="notebooks must be submitted with their outputs")

    @model_validator(mode="after")
    def _pattern_compiles(self) -> FileRules:
        if self.archive is not None:
            try:
                re.compile(self.archive)
            except re.error as error:
                raise ValueError(f"archive is not a regular expression: {error}") from None
        return self


class Policy(_Strict):
    due: datetime | None = Field(default=None, description="with its time zone, e.g. 2023-10-16T09:30:00+11:00")
    late_penalty_per_day: float = Field(default=0.0, ge=0, le=1, description="fraction of the maximum")
    late_rule: Literal["deduct", "cap"] = Field(
        default="deduct",
        description="deduct: the fraction of the maximum is taken off per day; cap: the grade is capped at "
                    "(1 - fraction x days) of the maximum",
    )
    not_assessed_after_days: int | None = Field(default=None, ge=0)
    bonus_cap: Literal["total", "none"] = Field(
        default="total",
        description="total: the grade including bonus points never exceeds the maximum (total_points); "
                    "none: bonus points may take it above. The cap applies to the raw points, before the "
                    "late rule",
    )
    files: FileRules = FileRules()

    @model_validator(mode="after")
    def _due_has_zone(self) -> Policy:
        if self.due is not None and self.due.tzinfo is None:
            raise ValueError("due needs a time zone, e.g. 2023-10-16T09:30:00+11:00")
        return self


class Limits(_Strict):
    """The limits of one run; what a kernel may use defaults to ``sandboxes.resources``'s."""

    cell_timeout_s: float = Field(default=600, gt=0)
    check_cell_timeout_s: float = Field(default=120, gt=0, description="per cell in a student's self-check")
    total_timeout_s: float = Field(default=3600, gt=0)
    probe_timeout_s: float = Field(default=120, gt=0)
    max_output_bytes: int = Field(default=1_000_000, gt=0, description="per cell, beyond it outputs are cut")
    memory_mb: int = Field(default=kernel.MEMORY_MB, ge=kernel.MIN_MEMORY_MB,
                           description="memory of one kernel and what it starts")
    cpus: float | None = Field(default=None, gt=0, description="CPU cores a kernel may use (Docker); "
                               "none: all")
    processes: int = Field(default=kernel.PROCESSES, gt=0, description="processes and threads of one kernel")
    scratch_mb: int = Field(default=kernel.SCRATCH_MB, gt=0, description="disk a kernel may write in all: its "
                            "copy of the submission and /tmp (per file where the host allows no private file system)")
    kernel_start_timeout_s: float = Field(default=300, gt=0, description="seconds a kernel may take to start; "
                                          "past it the grader, not the student, failed, and the submission is "
                                          "tried again")
    gpus: str = Field(default=kernel.GPUS, description="auto (all GPUs when the machine has any), all, none, "
                      "or indices")
    gpu_memory_gb: float | None = Field(default=None, gt=0, description="the GPU memory one grading needs "
                                        "(GB of 10^9 bytes, its CUDA context included); several gradings share "
                                        "a GPU when theirs fit. None: a whole GPU")
    gpu_count: int = Field(default=1, ge=0, description="GPUs one grading needs; 0 for CPU-only work")

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: str) -> str:
        problem = kernel.gpu_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _gpu_need(self) -> Limits:
        if self.gpu_count == 0 and self.gpu_memory_gb is not None:
            raise ValueError(f"gpu_memory_gb {self.gpu_memory_gb} with gpu_count 0: a CPU-only grading needs no "
                             "GPU memory (drop one of them)")
        return self


class GradescopeLimits(_Strict):
    """What the Gradescope assignment's autograder settings give a run (set them there to
    match): the grader keeps its whole run inside them, so that ``results.json`` is
    written before the platform stops it."""

    timeout_s: float = Field(default=600, gt=0, le=2400, description="Gradescope's autograder timeout "
                             "(10 minutes by default, 40 at most)")
    memory_mb: int = Field(default=768, ge=512, description="the container's memory (768 MB by default)")
    cpus: float = Field(default=0.5, gt=0, description="the container's CPUs (half a vCPU by default)")
    margin_s: float = Field(default=60, ge=0, description="kept back from the timeout for the checks' last "
                            "probes and writing results.json")
    grader_mb: int = Field(default=256, ge=0, description="kept back from the memory for the grader itself")

    @property
    def kernel_memory_mb(self) -> int:
        return max(kernel.MIN_MEMORY_MB, self.memory_mb - self.grader_mb)


class SlurmSettings(_Strict):
    """How ``autograder grade --cluster slurm`` asks a Slurm cluster for workers: each worker
    is one Slurm job (dask-jobqueue's ``SLURMCluster``) running a Dask worker that grades
    submissions one after another. The rubric's ``slurm:`` section, and over it a marker's
    ``--cluster-config`` file, key by key."""

    queue: str | None = Field(default=None, description="the partition (sbatch -p); none: the cluster's default")
    account: str | None = Field(default=None, description="the account charged (sbatch -A)")
    walltime: str = Field(default="04:00:00", pattern=r"^(\d+-)?\d+(:\d{2}){0,2}$",
                          description="each worker job's time limit (sbatch -t); a job that reaches it is "
                                      "replaced and its submission graded again")
    jobs: int = Field(default=2, ge=1, description="worker jobs kept running (a lost one is replaced)")
    cores: int = Field(default=4, ge=1, description="CPUs of each worker job, for its kernels")
    memory: str = Field(default="16GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B?$",
                        description="memory of each worker job (sbatch --mem), for its kernels")
    gpus: int = Field(default=0, ge=0, description="GPUs of each worker job (sbatch --gres=gpu:N)")
    gpu_memory_gb: float | None = Field(default=None, gt=0, description="the memory of one of those GPUs: with "
                                        "the rubric's limits.gpu_memory_gb it sets how many gradings share one; "
                                        "none: one grading per GPU")
    python: str | None = Field(default=None, description="the Python (with the autograder installed) a worker "
                               "runs on the nodes; none: this one, which must then be on shared storage")
    directives: list[str] = Field(default_factory=list, description="more #SBATCH lines, e.g. --qos=normal")
    prologue: list[str] = Field(default_factory=list, description="shell lines before the worker starts, e.g. "
                                "module load cuda")
    host: str | None = Field(default=None, description="the address of this machine the workers connect to; "
                             "none: Dask's choice (the address of the default route)")
    start_timeout_s: float = Field(default=3600, gt=0, description="how long the batch waits for a first worker "
                                   "job to start (a busy queue can hold jobs for a while)")


class DataSpec(_Strict):
    public: str = Field(description="folder of public data, relative to the rubric file")
    stage_as: str = Field(default="data", pattern=r"^[A-Za-z0-9._-]+$")


class Synthetic(_Strict):
    """How to grade with synthetic stand-ins for the datasets (tests, demos, self-checks)."""

    scale: Literal["small", "full"] = "small"
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="parameters cell values sized for the synthetic data"
    )
    smallest: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per question, the parameters that run its section at its smallest: a variant that "
                    "breaks nothing there runs it so (variants.yaml `small`), and its items are not asserted",
    )
    unproven: dict[str, str] = Field(
        default_factory=dict,
        description="items whose thresholds the stand-in's short training cannot prove for every network the "
                    "handout allows, with what was measured: below them on stand-ins, the item goes to a marker "
                    "with the stand-in's budget (never a failure the grader's budget caused)",
    )

    def at_its_budget(self, data: Any, parameters: dict[str, Any], question: str) -> bool:
        """Whether a run is on stand-ins, ``question`` trained at the sizes set here (where the
        figures of ``unproven`` were measured), not on the course's data or at other sizes
        (the parameters that size the question, as ``smallest`` names them, else all but those
        it names for other questions)."""
        others = {name for asked, sizes in self.smallest.items() if asked != question for name in sizes}
        sizing = self.smallest.get(question) or [name for name in self.parameters if name not in others]
        return bool(getattr(data, "synthetic", False)) and all(
            parameters.get(name) == self.parameters.get(name) for name in sizing)

    def too_short(self, parameters: dict[str, Any], why: str) -> str:
        """The words a reason adds when a stand-in's short training, not the student, may be
        what fell short: what the grader set, and why that cannot prove the threshold."""
        budget = ", ".join(f"{name}={parameters[name]}" for name in self.parameters if name in parameters)
        return (f"measured on the synthetic stand-in, trained as the grader set it ({budget or 'its small sizes'}), "
                f"whose budget cannot prove this threshold: {why}; a marker grades it on the course's data")


class Rubric(_Strict):
    assignment: str = Field(pattern=_ID)
    title: str
    handout: str | None = None
    total_points: float = Field(gt=0)
    policy: Policy = Policy()
    limits: Limits = Limits()
    gradescope: GradescopeLimits = GradescopeLimits()
    slurm: SlurmSettings = SlurmSettings()
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="values the grader gives each notebook's parameters cell"
    )
    data: DataSpec | None = None
    npz: list[NpzSpec] = Field(default_factory=list, description="the course's own .npz files, as datasets")
    datasets_at: list[str] = Field(default_factory=list, description="folders, relative to each notebook, where "
                                   "the datasets' files are put (\".\": beside the notebook, as the course handed "
                                   "them out); default: the data folder (data.stage_as, else data)")
    stl10: list[SplitSpec] = Field(default_factory=list, description="a course's split of STL10's labelled "
                                                                     "images, as datasets")
    synthetic: Synthetic = Synthetic()
    notebooks: list[NotebookSpec] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        problems = []
        question_ids = [q.id for q in self.questions]
        for dup in sorted({i for i in question_ids if question_ids.count(i) > 1}):
            problems.append(f"question id {dup!r} is used twice")
        item_ids = [item.id for q in self.questions for item in q.items]
        for dup in sorted({i for i in item_ids if item_ids.count(i) > 1}):
            problems.append(f"item id {dup!r} is used twice")
        total = sum(q.points for q in self.questions if not q.bonus)
        if not math.isclose(total, self.total_points, abs_tol=1e-9):
            bonus = " (bonus questions left out)" if any(q.bonus for q in self.questions) else ""
            problems.append(f"questions add up to {total:g}{bonus} but total_points is {self.total_points:g}")
        placed = [qid for nb in self.notebooks for qid in nb.questions]
        for qid in placed:
            if qid not in question_ids:
                problems.append(f"notebook lists question {qid!r}, which the rubric does not have")
        for q in self.questions:
            if q.status == "ready" and placed.count(q.id) != 1:
                problems.append(f"question {q.id!r} must be graded from exactly one notebook")
        declared = [spec.name for spec in self.npz] + [split.name for split in self.stl10]
        for name in sorted({n for n in declared if declared.count(n) > 1 or n in DATASETS}):
            problems.append(f"dataset {name!r} is declared twice or is a dataset module's name")
        for spec in self.notebooks:
            unknown = [name for name in spec.datasets if name not in DATASETS and name not in declared]
            if unknown:
                known = ", ".join([*sorted(DATASETS), *declared])
                problems.append(f"notebook {spec.file!r} reads unknown dataset {', '.join(map(repr, unknown))}; "
                                f"known: {known} (a dataset is a module in autograder/data/, or declared "
                                "under npz: or stl10:)")
        for spec in self.notebooks:
            declared_names = {name: s for q in self.questions if q.id in spec.questions for name, s in q.names.items()}
            for name, name_spec in declared_names.items():
                if not re.fullmatch(_PYTHON_NAME, name):
                    problems.append(f"names: {name!r} is not a Python name")
                if name_spec.of is not None and declared_names.get(name_spec.of) is None:
                    problems.append(f"names: {name!r} is of {name_spec.of!r}, which no question of "
                                    f"{spec.file} declares")
        for folder in self.datasets_at:
            if folder.startswith(("/", "..")) or "\\" in folder or "/../" in f"/{folder}/":
                problems.append(f"datasets_at: {folder!r} should be a folder inside the notebook's, such as . or data")
        for qid in self.synthetic.smallest:
            if qid not in question_ids:
                problems.append(f"synthetic.smallest names question {qid!r}, which the rubric does not have")
        automatic = {item.id for _, item in self.items() if item.kind == "auto"}
        for item_id in self.synthetic.unproven:
            if item_id not in automatic:
                problems.append(f"synthetic.unproven names item {item_id!r}, which is not an automatic item")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def items(self) -> Iterator[tuple[Question, Item]]:
        for question in self.questions:
            for item in question.items:
                yield question, item

    @staticmethod
    def marked_by_hand(question: Question, item: Item) -> bool:
        """A person gives its points: a manual item, or any item of a planned question."""
        return item.kind == "manual" or question.status == "planned"

    @property
    def bonus_points(self) -> float:
        """The points of the bonus questions, outside total_points."""
        return sum(q.points for q in self.questions if q.bonus)

    def item(self, item_id: str) -> tuple[Question, Item]:
        for question, item in self.items():
            if item.id == item_id:
                return question, item
        raise KeyError(item_id)

    def notebook_for(self, question_id: str) -> str | None:
        for spec in self.notebooks:
            if question_id in spec.questions:
                return spec.file
        return None

    def names_for(self, notebook: str) -> dict[str, NameSpec]:
        """The names the checks of ``notebook``'s questions read, with what each must be."""
        return {name: spec for q in self.questions if self.notebook_for(q.id) == notebook
                for name, spec in q.names.items()}

    def datasets(self, notebooks: tuple[str, ...] | list[str] = ()) -> list[str]:
        """The datasets the given notebooks read (all notebooks when none are given)."""
        names: list[str] = []
        for spec in self.notebooks:
            if not notebooks or spec.file in notebooks:
                names += [name for name in spec.datasets if name not in names]
        return names

    def given(self, item_id: str) -> dict[str, Any]:
        question, item = self.item(item_id)
        return {**question.given, **item.given}


def _describe(raw: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location into 'question '3' › item '3.1a' › field 'points''."""
    parts: list[str] = []
    node = raw
    pending_list: str | None = None
    for key in loc:
        if isinstance(key, int) and pending_list is not None:
            node = node[key] if isinstance(node, list) and key < len(node) else {}
            label = {"questions": "question", "items": "item", "notebooks": "notebook", "bands": "band"}
            name = label.get(pending_list, pending_list)
            ident = node.get("id", node.get("file")) if isinstance(node, dict) else None
            parts.append(f"{name} {ident!r}" if ident is not None else f"{name} #{key + 1}")
            pending_list = None
            continue
        if pending_list is not None:
            parts.append(f"field {pending_list!r}")
        node = node.get(key) if isinstance(node, dict) else None
        pending_list = str(key)
    if pending_list is not None:
        parts.append(f"field {pending_list!r}")
    return " › ".join(parts) or "top level"


def parse_rubric(raw: Any, path: str) -> Rubric:
    """Validate already-loaded YAML data; ``path`` names the source in messages."""
    if not isinstance(raw, dict):
        raise RubricError(path, ["the file must hold a mapping (assignment, questions, ...)"])
    try:
        return Rubric.model_validate(raw)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "string_type" and isinstance(detail.get("input"), (int, float)):
                message += f' (quote it: "{detail["input"]}"; YAML reads it as a number)'
            problems.append(f"{_describe(raw, tuple(detail['loc']))}: {message}")
        raise RubricError(path, problems) from None


def load_rubric(path: Path) -> Rubric:
    """Read and validate ``path``; every problem names the file, item and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RubricError(str(path), [f"cannot read: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RubricError(str(path), [f"{where}not valid YAML ({getattr(error, 'problem', error)})"]) from None
    return parse_rubric(raw, str(path))
