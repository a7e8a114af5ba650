"""The ``autograder`` command line. It parses and calls; the work lives elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .assignment import load_assignment
from .errors import AutograderError, UsageError
from .intake import open_submission
from .pipeline import BatchEntry, GradeOptions, grade_batch, grade_submission
from .report import render

console = Console(stderr=False)
errors = Console(stderr=True)


def _parameters(values: tuple[str, ...]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--param {value!r}: expected NAME=VALUE with a Python name")
        parsed[key] = yaml.safe_load(raw) if raw else ""
    return parsed


def _limit_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--cell-timeout", type=float, help="Seconds per cell (default: the rubric's)."),
            click.option("--total-timeout", type=float, help="Seconds per notebook (default: the rubric's)."),
            click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                         help="Value for the notebooks' parameters cell (repeatable)."),
        ]
    ):
        function = option(function)
    return function


def _options(cell_timeout: float | None, total_timeout: float | None, params: tuple[str, ...], **extra: Any) -> GradeOptions:
    return GradeOptions(
        cell_timeout_s=cell_timeout, total_timeout_s=total_timeout, parameters=_parameters(params), **extra
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autograder")
def cli() -> None:
    """Grade deep-learning notebooks by measuring what the code and models do."""


@cli.command()
@click.argument("assignment")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results folder: one folder per submission and summary.csv.")
@click.option("--regrade", is_flag=True, help="Grade again submissions already graded from the same files.")
@_limit_options
def grade(assignment: str, paths: tuple[Path, ...], out: Path, regrade: bool, **limits: Any) -> None:
    """Grade submissions: each PATH is a notebook, a zip or a folder per student,
    or a folder holding many of those."""
    target = load_assignment(assignment)
    entries: list[BatchEntry] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"grading {target.id}", total=None)

        def listen(event: str, entry: BatchEntry) -> None:
            if event == "start":
                progress.update(task, description=f"grading {entry.id}")
                return
            progress.advance(task)
            total = entry.totals
            if entry.status == "error":
                progress.console.print(f"[magenta]✗ {entry.id}[/]: {entry.message}", markup=True)
            elif total:
                state = "skipped, " if entry.status == "skipped" else ""
                progress.console.print(
                    f"[green]✓[/] {entry.id}: {state}{total['auto_points']:g} / {total['auto_max']:g} automatic"
                    f" ({entry.seconds:.1f} s){'  ' + entry.message if entry.message and entry.status != 'skipped' else ''}"
                )

        from .intake import discover  # noqa: PLC0415

        progress.update(task, total=len(discover(list(paths))))
        entries = grade_batch(target, list(paths), out_dir=out, options=_options(**limits), regrade=regrade,
                              listener=listen)
        progress.update(task, description=f"graded {target.id}")
    table = Table(title=f"{target.id}: {len(entries)} submissions → {out}/", title_justify="left")
    for column in ("Submission", "Automatic", "Awaiting marker", "Status"):
        table.add_column(column)
    for entry in entries:
        total = entry.totals
        auto = f"{total['auto_points']:g} / {total['auto_max']:g}" if total else "–"
        table.add_row(entry.id, auto, f"{total.get('awaiting_marker', 0):g}" if total else "–",
                      entry.status if not entry.message else f"{entry.status}: {entry.message[:80]}")
    console.print(table)
    if any(entry.status == "error" for entry in entries):
        sys.exit(4)


@cli.command()
@click.argument("assignment")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_limit_options
def check(assignment: str, path: Path, **limits: Any) -> None:
    """Self-check a notebook (or the zip or folder about to be submitted) against the
    public items. Exits 1 when a public item is not yet earned."""
    target = load_assignment(assignment)
    submission = open_submission(path)
    try:
        with console.status("running the notebooks and the public checks..."):
            result = grade_submission(target, submission, options=_options(**limits, public_only=True))
    finally:
        submission.close()
    render(result, console=console)
    missing = [i for i in result.items if i.status in ("failed", "partial", "error")]
    if missing or result.problem:
        console.print(f"[yellow]{len(missing)} public item(s) not yet earned.[/]")
        sys.exit(1)
    console.print("[green]every public automatic item is earned.[/]")


@cli.command(name="rubric")
@click.argument("assignment")
def rubric_command(assignment: str) -> None:
    """Validate an assignment's rubric and list its items."""
    target = load_assignment(assignment)
    rubric = target.rubric
    table = Table(title=f"{rubric.assignment}: {rubric.title} ({rubric.total_points:g} points)", title_justify="left")
    for column in ("Item", "What", "Points", "Kind", "Visibility"):
        table.add_column(column)
    for question, item in rubric.items():
        kind = item.kind if question.status == "ready" else f"{item.kind} (planned)"
        table.add_row(item.id, item.title, f"{item.points:g}", kind, item.visibility)
    console.print(table)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        errors.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except AutograderError as error:
        errors.print(f"[red]error:[/] {error.message}", markup=True, highlight=False)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        errors.print("interrupted: results written so far are kept; run again to resume")
        sys.exit(130)
