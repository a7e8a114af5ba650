"""Broken submissions made from an assignment's reference (or template) by exact edits.

``rubrics/<id>/variants.yaml`` lists them, each with the automatic items it must lose.
They prove every check both ways (the reference earns the points, a variant that breaks
the item loses exactly those points) and make up the sample batch of ``autograder demo``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import nbformat
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..course.assignment import Assignment
from ..errors import AssignmentError
from ..grading.moodle import Upload, write_download
from ..grading.pipeline import GradeOptions
from ..grading.record import Grade
from ..marking.worksheet import write_worksheet


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Edit(_Strict):
    notebook: str
    find: str
    replace: str
    everywhere: bool = Field(default=False, description="replace every occurrence (a rename)")


class AddCell(_Strict):
    notebook: str
    source: str
    after: str | None = Field(default=None, description="text of the cell to insert after; none: at the end")


class Variant(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    about: str
    base: Literal["reference", "template"] = "reference"
    edits: list[Edit] = Field(default_factory=list)
    add_cells: list[AddCell] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list, description="notebooks left out of the submission")
    rename: dict[str, str] = Field(default_factory=dict, description="notebooks submitted under another name")
    options: dict[str, Any] = Field(default_factory=dict, description="GradeOptions fields for this variant")
    loses: list[str] | Literal["all"]
    partial: list[str] = Field(default_factory=list, description="items of `loses` that keep some points")
    referred: list[str] = Field(default_factory=list, description="items of `loses` the grader must send to a marker")
    says: dict[str, str] = Field(default_factory=dict, description="words an item's reason must hold (the cause "
                                 "named, not only the symptom)")
    small: list[str] = Field(
        default_factory=list,
        description="questions it breaks nothing in, run at their smallest sizes (the rubric's synthetic.smallest): "
                    "their items are not asserted, only that none is a grader error",
    )
    demo: bool = Field(default=False, description="part of the sample batch `autograder demo` grades")


class VariantFile(_Strict):
    variants: list[Variant]


def touched_notebooks(variant: Variant) -> tuple[str, ...]:
    """The notebooks a variant of the reference changes; empty when it changes them all."""
    if variant.base == "template":
        return ()
    names = {e.notebook for e in variant.edits} | {a.notebook for a in variant.add_cells}
    return tuple(sorted(names | set(variant.drop) | set(variant.rename)))


def load_variants(assignment: Assignment) -> list[Variant]:
    path = assignment.variants_path
    if not path.is_file():
        return []
    try:
        variants = VariantFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).variants
    except (ValidationError, yaml.YAMLError) as error:
        raise AssignmentError(f"{path}: {error}") from None
    problems = [problem for variant in variants for problem in _problems(assignment, variant)]
    if problems:
        raise AssignmentError(f"{path}:\n" + "\n".join(f"  - {problem}" for problem in problems))
    return variants


def _problems(assignment: Assignment, variant: Variant) -> list[str]:
    rubric = assignment.rubric
    known = {item.id for _, item in rubric.items()}
    claimed = (set(variant.partial) | set(variant.referred) | set(variant.says)
               | (set() if variant.loses == "all" else set(variant.loses)))
    problems = [f"variant {variant.name}: item {i!r} is not in the rubric" for i in sorted(claimed - known)]
    for question in variant.small:
        if question not in rubric.synthetic.smallest:
            problems.append(f"variant {variant.name}: small question {question!r} has no synthetic.smallest "
                            "parameters in the rubric")
    run_small = {item.id for q, item in rubric.items() if q.id in variant.small}
    if variant.small and variant.loses == "all":
        problems.append(f"variant {variant.name}: loses all, so no question can run small")
    for item in sorted(claimed & run_small):
        problems.append(f"variant {variant.name}: item {item!r} is claimed but its question runs small")
    if variant.loses != "all" and not set(variant.partial) <= set(variant.loses):
        problems.append(f"variant {variant.name}: partial items must be among the items it loses")
    if variant.loses != "all" and not set(variant.referred) <= set(variant.loses) - set(variant.partial):
        problems.append(f"variant {variant.name}: referred items must be among the items it loses, not partial")
    return problems


def proof_options(assignment: Assignment, variant: Variant) -> GradeOptions:
    """How the course matrix grades a variant: on synthetic data, only the notebooks it
    changes (the others are the reference's, graded on their own), and the questions it
    names ``small`` at their smallest sizes, their checks not run (nothing is asserted of
    them); its own options last."""
    options = dict(variant.options)
    smallest: dict[str, Any] = {}
    for question in variant.small:
        smallest.update(assignment.rubric.synthetic.smallest[question])
    parameters = {**smallest, **options.pop("parameters", {})}
    checked = tuple(q.id for q in assignment.rubric.questions if q.id not in variant.small) if variant.small else ()
    return GradeOptions(**options, parameters=parameters, synthetic=True, notebooks=touched_notebooks(variant),
                        questions=checked)


def asserted_items(assignment: Assignment, variant: Variant | None) -> set[str]:
    """The automatic items whose points a proof asserts: all but those of the questions
    the variant runs small (the reference proves them at their synthetic sizes)."""
    small = set(variant.small) if variant else set()
    return {item for item in automatic_items(assignment) if assignment.rubric.item(item)[0].id not in small}


def automatic_items(assignment: Assignment) -> set[str]:
    return {i.id for q, i in assignment.rubric.items() if i.kind == "auto" and q.status == "ready"}


def expected_losses(assignment: Assignment, variant: Variant) -> set[str]:
    return automatic_items(assignment) if variant.loses == "all" else set(variant.loses)


def lost_items(grade: Grade) -> set[str]:
    """Automatic items that did not earn their full points."""
    return {item.id for item in grade.automatic if item.earned < item.max_points}


def _apply(nb: Any, edit: Edit, where: str) -> None:
    cells = [cell for cell in nb.cells if edit.find in cell.source]
    count = sum(cell.source.count(edit.find) for cell in cells)
    if count == 0 or (count > 1 and not edit.everywhere):
        raise AssignmentError(f"{where}: {edit.find!r} occurs {count} times in {edit.notebook}; need exactly one")
    for cell in cells:
        if edit.everywhere:
            cell.source = re.sub(rf"\b{re.escape(edit.find)}\b", edit.replace, cell.source)
        else:
            cell.source = cell.source.replace(edit.find, edit.replace)


def _add(nb: Any, add: AddCell, where: str) -> None:
    cell = nbformat.v4.new_code_cell(add.source)
    cell["id"] = f"variant-{len(nb.cells)}"
    if add.after is None:
        nb.cells.append(cell)
        return
    positions = [i for i, c in enumerate(nb.cells) if add.after in c.source]
    if len(positions) != 1:
        raise AssignmentError(f"{where}: {add.after!r} is in {len(positions)} cells of {add.notebook}; need one")
    nb.cells.insert(positions[0] + 1, cell)


def build_variant(assignment: Assignment, variant: Variant, folder: Path) -> Path:
    """Write the variant's notebooks into ``folder`` (created) and return it."""
    base = assignment.reference_dir if variant.base == "reference" else assignment.templates_dir
    notebooks = {p.name: nbformat.read(p, as_version=4) for p in sorted(base.glob("*.ipynb"))}
    where = f"{assignment.variants_path} variant {variant.name}"
    for edit in variant.edits:
        _apply(notebooks[edit.notebook], edit, where)
    for add in variant.add_cells:
        _add(notebooks[add.notebook], add, where)
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        if name not in variant.drop:
            nbformat.write(nb, folder / variant.rename.get(name, name))
    return folder


_ZIP_TIME = (2023, 10, 16, 9, 0, 0)  # fixed, so the same notebooks always make the same zip


def write_zip(folder: Path, archive: Path) -> Path:
    """Zip a folder of notebooks as a student would submit it."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                bundle.writestr(info, path.read_bytes())
    return archive


def write_sample_batch(assignment: Assignment, folder: Path) -> list[Path]:
    """One zip per student: the reference, then every variant marked for the demo."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [None, *(v for v in load_variants(assignment) if v.demo)]
    archives = []
    with tempfile.TemporaryDirectory(prefix="autograder-sample-") as scratch:
        for number, variant in enumerate(chosen, start=1):
            name = "reference" if variant is None else variant.name
            source = Path(scratch) / name
            if variant is None:
                shutil.copytree(assignment.reference_dir, source, ignore=shutil.ignore_patterns(".*"))
            else:
                build_variant(assignment, variant, source)
            archives.append(write_zip(source, folder / f"{number:02d}_{name}.zip"))
    return archives


_PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"  # a report stand-in


def write_moodle_sample(assignment: Assignment, folder: Path) -> tuple[Path, Path]:
    """The sample batch as a marker gets it from Moodle: a "Download all submissions" zip
    (each student's own zip inside) and the grading worksheet. One student submits a day
    late, one more than a week late, and one not at all."""
    archives = write_sample_batch(assignment, folder / "students")
    due = assignment.rubric.policy.due or datetime(2023, 10, 16, 9, 30, tzinfo=timezone.utc)
    uploads: list[Upload] = []
    rows: list[tuple[str, str, datetime | None]] = []
    for number, archive in enumerate(archives, start=1):
        participant, name = str(1000000 + number), f"Student {number:02d} {archive.stem.split('_', 1)[1]}"
        late = {len(archives) - 1: timedelta(hours=3), len(archives): timedelta(days=9)}.get(
            number, -timedelta(hours=2))
        files = {f"Student{name.split()[1]}_{participant}.zip": archive.read_bytes(),
                 f"Student{name.split()[1]}_{participant}_report.pdf": _PDF}
        uploads.append(Upload(name, participant, files))
        rows.append((participant, name, (due + late).astimezone(due.tzinfo)))
    rows.append((str(1000000 + len(archives) + 1), "Student Absent", None))
    download = write_download(folder / "moodle-download.zip", uploads)
    worksheet = write_worksheet(folder / "grading-worksheet.csv", rows, maximum=assignment.rubric.total_points)
    return download, worksheet
