"""Write a grade: ``grade.json`` (the source of truth), a readable summary, the executed
notebooks and the check log, per submission; and a batch ``summary.csv``.

``grade.json`` is written last and atomically, so its presence means the submission is done.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import nbformat
from nbformat import NotebookNode
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..atomic import atomic_write
from .moodle import Student
from .record import CellStatus, Grade, ItemGrade, Level, Status

GRADE_FILE = "grade.json"
SUMMARY_FILE = "summary.txt"
BATCH_CSV = "summary.csv"
NOTE_TAG = "autograder-note"
_STYLE = {
    Status.PASSED: "green",
    Status.PARTIAL: "yellow",
    Status.FAILED: "red",
    Status.ERROR: "magenta",
    Status.REFERRED: "magenta",
    Status.MANUAL: "cyan",
    Status.PLANNED: "cyan",
    Status.MARKED: "cyan",
    Status.NOT_CHECKED: "dim",
}


def _points(item: ItemGrade) -> str:
    earned = "–" if item.points is None else f"{item.points:g}"
    return f"{earned} / {item.max_points:g}"


def summary_table(grade: Grade, *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    table.add_column("Item", no_wrap=True)
    table.add_column("What", overflow="fold", max_width=38)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Reason", overflow="fold", max_width=70)
    for item in grade.items:
        style = _STYLE.get(item.status, "")
        title = f"{item.title} (bonus)" if item.bonus else item.title
        table.add_row(item.id, title, _points(item), Text(item.status, style=style), item.reason)
    return table


def render(grade: Grade, *, console: Console) -> None:
    """Print the grade: totals, the item table, notebook problems and findings."""
    console.print(
        f"[bold]{grade.assignment}[/] · [bold]{grade.submission}[/]   "
        f"automatic {grade.auto_points:g} / {grade.auto_max:g}   "
        f"awaiting a marker {grade.awaiting_marker:g}   maximum {grade.total_max:g}"
        + (f"   bonus {grade.bonus_points:g} / {grade.bonus_max:g}" if grade.bonus else "")
    )
    if grade.problem:
        console.print(f"[red]cannot be graded:[/] {grade.problem}")
    console.print(summary_table(grade))
    for notebook in grade.notebooks:
        if notebook.problem or notebook.stopped or notebook.causes:
            console.print(f"[bold]{notebook.notebook}[/] ({notebook.seconds:g} s)")
            if notebook.problem:
                console.print(f"  [red]{notebook.problem}[/]")
            for cause in notebook.causes:
                console.print(f"  cause: {cause}", markup=False)
            for cell in notebook.own_faults:
                console.print(f"  code cell {cell.cell}: {cell.status}: {cell.error or cell.note}", markup=False)
    for finding in grade.findings:
        console.print(f"  {finding.level}: {finding.file}: {finding.message}", markup=False)


def render_text(grade: Grade, width: int = 150) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, record=True)
    render(grade, console=console)
    return console.export_text()


def write_submission(
    folder: Path,
    grade: Grade,
    *,
    source: str,
    digest: str,
    executed: dict[str, NotebookNode],
    log: str,
    sandbox: dict[str, Any] | None = None,
    student: Student | None = None,
    data: str = "",
) -> Path:
    """Write everything for one submission; ``grade.json`` last.

    Each executed notebook opens with a note for whoever reads it: it ran in the grader's
    sandbox, the grade is measured, not read from its outputs, and ``data`` (what it read).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / GRADE_FILE).unlink(missing_ok=True)
    notebooks = folder / "executed"
    notebooks.mkdir(exist_ok=True)
    for name, nb in executed.items():
        atomic_write(notebooks / name, nbformat.writes(_with_note(nb, data)))
    atomic_write(folder / "checks.log", log)
    atomic_write(folder / SUMMARY_FILE, render_text(grade))
    grade.source, grade.digest, grade.student, grade.sandbox = source, digest, student, sandbox or {}
    grade.graded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    grade.grader_version = __version__
    atomic_write(folder / GRADE_FILE, json.dumps(grade.to_record(), indent=2, default=str))
    return folder / GRADE_FILE


def _with_note(nb: NotebookNode, data: str) -> NotebookNode:
    """A copy of ``nb`` that opens with a markdown cell saying how it ran."""
    text = ("**Run by the autograder** in its sandbox. The grade was measured by the grader's checks "
            f"(see `{SUMMARY_FILE}`), not read from the outputs below.")
    cell = nbformat.v4.new_markdown_cell(f"{text} {data}".strip(), metadata={"tags": [NOTE_TAG]})
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        cell.pop("id", None)  # cell ids came with nbformat 4.5
    copy = cast(NotebookNode, nbformat.from_dict(nb))
    copy.cells.insert(0, cell)
    return copy


def load_grade(folder: Path) -> Grade | None:
    """The grade written in ``folder``; None when there is none, or it cannot be read."""
    try:
        return Grade.from_record(json.loads((folder / GRADE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: In a submission's result folder: why the grader could not grade it (it is tried again on the next run).
ERROR_FILE = "error.txt"


def load_errors(out_dir: Path) -> dict[str, str]:
    """Submissions the grader failed on, by folder name, with the first line of each ``error.txt``."""
    if not out_dir.is_dir():
        return {}
    found = {}
    for path in sorted(out_dir.glob(f"*/{ERROR_FILE}")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        found[path.parent.name] = lines[0] if lines else ""
    return found


def load_grades(out_dir: Path) -> dict[str, Grade]:
    """Every complete result under ``out_dir``, by folder name."""
    return {p.name: g for p in sorted(out_dir.iterdir()) if p.is_dir() and (g := load_grade(p))}


def write_batch_summary(out_dir: Path, grades: list[Grade] | None = None) -> Path:
    """One row per graded submission: ``grades``, or every ``grade.json`` under ``out_dir``."""
    if grades is None:
        grades = list(load_grades(out_dir).values())
    grades = sorted(grades, key=lambda g: g.submission)
    item_ids = list(dict.fromkeys(item.id for grade in grades for item in grade.items))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "auto_points", "auto_max", "awaiting_marker", "max", "problem", *item_ids])
    for grade in grades:
        points = {i.id: ("" if i.points is None else i.points) for i in grade.items}
        writer.writerow([grade.submission, grade.auto_points, grade.auto_max, grade.awaiting_marker, grade.total_max,
                         grade.problem, *[points.get(i, "") for i in item_ids]])
    path = out_dir / BATCH_CSV
    atomic_write(path, buffer.getvalue())
    return path


def render_check(grade: Grade, *, console: Console, cell_timeout: float) -> None:
    """A student's self-check, in the order they act on it: the files, the public items
    with what was measured, then what is marked by hand or by the markers only."""
    console.print(f"[bold]{grade.assignment}[/]: self-check of {grade.submission}")
    if grade.problem:
        console.print(f"[red]cannot be checked:[/] {grade.problem}", highlight=False)
    console.print("\n[bold]1. Files[/]")
    if not grade.findings:
        console.print("  names and packaging look right")
    for finding in sorted(grade.findings, key=lambda f: list(Level).index(Level(f.level))):
        style = {Level.ERROR: "red", Level.WARNING: "yellow"}.get(Level(finding.level), "")
        console.print(f"  [{style or 'default'}]{finding.level}[/]: {finding.file}: {finding.message}", highlight=False)
    console.print("\n[bold]2. Public checks[/]")
    checked = grade.automatic
    table = Table(expand=False, show_lines=False, box=None, pad_edge=False)
    for column, justify in (("Item", "left"), ("Points", "right"), ("Status", "left"), ("Measured / why", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for item in checked:
        table.add_row(item.id, _points(item), Text(item.status, style=_STYLE.get(item.status, "")), item.reason)
    console.print(table if checked else "  none in the notebooks given")
    for notebook in grade.notebooks:
        for cell in (c for c in notebook.cells_not_ok if c.status is CellStatus.TIMEOUT):
            console.print(f"  {notebook.notebook}: code cell {cell.cell} was stopped after {cell_timeout:g} s, the "
                          "self-check's limit per cell (--cell-timeout to allow more)", highlight=False)
        for cause in notebook.causes:
            console.print(f"  {notebook.notebook}: {cause}", highlight=False)
        for cell in (c for c in notebook.own_faults if c.status in (CellStatus.ERROR, CellStatus.DIED)):
            console.print(f"  {notebook.notebook}: code cell {cell.cell}: {cell.error or cell.note}", highlight=False)
        if notebook.problem:
            console.print(f"  {notebook.notebook}: {notebook.problem}", highlight=False)
    console.print("\n[bold]3. Marked later[/]")
    manual = grade.awaiting
    hidden = [item for item in grade.not_checked if item.visibility == "hidden"]
    elsewhere = [item for item in grade.not_checked if item.visibility != "hidden"]
    for label, items in (("by hand", manual), ("by the markers' hidden checks", hidden),
                         ("in the notebooks not given here", elsewhere)):
        if items:
            total = sum(item.max_points for item in items if not item.bonus)
            bonus = sum(item.max_points for item in items if item.bonus)
            extra = f" and {bonus:g} bonus" if bonus else ""
            console.print(f"  {label} ({total:g} points{extra}): " + ", ".join(i.id for i in items), highlight=False)
    line = f"\npublic automatic items: {grade.auto_points:g} / {grade.auto_max:g}"
    bonus_checked = [item for item in checked if item.bonus and not item.status.awaiting]
    if bonus_checked:
        line += (f", bonus {sum(i.earned for i in bonus_checked):g} / "
                 f"{sum(i.max_points for i in bonus_checked):g}")
    console.print(line)
