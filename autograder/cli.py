"""The ``autograder`` command line. It parses and calls; the work lives elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from .authoring.variants import write_moodle_sample
from .authoring.verify import verify
from .course.assignment import Assignment, load_assignment
from .course.bundle import student_bundle
from .data import DATASETS, SCALES, missing, synth
from .errors import AutograderError, SubmissionError, UsageError
from .grading.check import collect_problems
from .grading.intake import notebook_names
from .grading.pipeline import GradeOptions, datasets_read, grade_submission
from .grading.preflight import notebooks_given, notebooks_held
from .grading.record import Status
from .grading.report import render_check
from .marking.batch import BatchEntry, EntryStatus, check_arguments, grade_batch
from .marking.cluster import cluster_address
from .marking.progress import (
    batch_display,
    exit_code,
    progress_every,
    stop_on_signals,
    stopped_message,
)
from .marking.publish import GRADEBOOK, MarkerFiles, publish
from .sandboxes.backends import SANDBOXES, make_sandbox
from .sandboxes.docker_sandbox import DEFAULT_IMAGE, DockerSandbox
from .sandboxes.resources import parse_memory
from .sandboxes.sandbox import Sandbox

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


def _sandbox_options(function: Any) -> Any:
    """``--sandbox`` and ``--image``; the default is the library's (``auto``)."""
    function = click.option("--image", help=f"Grading image for --sandbox docker [default: {DEFAULT_IMAGE}].")(function)
    return click.option("--sandbox", "sandbox_kind", type=click.Choice(SANDBOXES), default="auto", show_default=True,
                        help="Where students' code runs: docker (a container per kernel), local (a jailed "
                             "subprocess), auto (docker when its engine and image are here).")(function)


def _limit_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--gpus", help="GPUs a kernel sees: all, none, or indices such as 0 or 0,1 "
                                        "(default: the rubric's; auto = all when there are any)."),
            click.option("--memory", help="Memory per kernel, e.g. 8g (default: the rubric's)."),
            click.option("--timeout", "--total-timeout", "total_timeout", type=float,
                         help="Wall-clock seconds per notebook (default: the rubric's)."),
            click.option("--cell-timeout", type=float, help="Seconds per cell (default: the rubric's)."),
            click.option("--start-timeout", type=float,
                         help="Seconds a kernel may take to start; past it the grader failed, not the student, "
                              "and the submission is tried again (default: the rubric's, 300)."),
            click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                         help="Value for the notebooks' parameters cell (repeatable)."),
            click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                         help="The course's data folder (for assignments that read datasets)."),
            click.option("--synthetic", is_flag=True,
                         help="Without --data: use small synthetic stand-ins for the datasets."),
        ]
    ):
        function = option(function)
    return _sandbox_options(function)


#: What the command line calls the grading options it sets (for messages about bad values).
FLAGS = {"cell_timeout_s": "--cell-timeout", "total_timeout_s": "--timeout", "memory_mb": "--memory",
         "kernel_start_timeout_s": "--start-timeout", "gpus": "--gpus", "parameters": "--param"}


def _options(cell_timeout: float | None, total_timeout: float | None, params: tuple[str, ...],
             data_dir: Path | None, synthetic: bool, gpus: str | None, memory: str | None,
             start_timeout: float | None = None, **extra: Any) -> GradeOptions:
    return GradeOptions(cell_timeout_s=cell_timeout, total_timeout_s=total_timeout, parameters=_parameters(params),
                        data_dir=data_dir, synthetic=synthetic, gpus=gpus,
                        memory_mb=parse_memory(memory) if memory else None, kernel_start_timeout_s=start_timeout,
                        names=FLAGS, **extra)


def _sandbox(kind: str, image: str | None) -> Sandbox:
    """The sandbox the options name, probed (seconds, as root) and announced."""
    sandbox = make_sandbox(kind, image=image)
    sandbox.check()
    where = f"Docker, image {sandbox.image}" if isinstance(sandbox, DockerSandbox) else "a local jailed subprocess"
    errors.print(f"students' code runs in {where}")
    return sandbox


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autograder")
def cli() -> None:
    """Grade deep-learning notebooks by measuring what the code and models do."""


def _grade_with_progress(target: Assignment, paths: list[Path], *, out: Path, options: GradeOptions,
                         regrade: bool, sandbox: Sandbox | str, workers: int | None = None,
                         cluster: str | None = None,
                         cluster_config: Path | None = None) -> tuple[list[BatchEntry], list[str]]:
    """Grade a batch, showing its progress; print the batch table. Returns the entries and
    the inputs refused as holding nothing to grade. Stopped by a signal, say what is left
    and exit 128 + its number."""
    with batch_display(console, f"grading {target.id}") as events:
        try:
            entries = grade_batch(target, paths, out_dir=out, options=options, regrade=regrade, events=events,
                                  sandbox=sandbox, workers=workers, cluster=cluster,
                                  cluster_config=cluster_config)
        except KeyboardInterrupt as stop:
            errors.print(stopped_message(stop, events.left()), highlight=False)
            sys.exit(exit_code(stop))
    table = Table(title=f"{target.id}: {len(entries)} submissions, results in {out}/", title_justify="left")
    for column in ("Submission", "Automatic", "Awaiting a marker", "Status"):
        table.add_column(column)
    for entry in entries:
        totals = entry.totals
        auto = f"{totals['auto_points']:g} / {totals['auto_max']:g}" if totals else "–"
        if "bonus_points" in totals:
            auto += f" + {totals['bonus_points']:g} bonus"
        awaiting = f"{totals['awaiting_marker']:g}" if totals else "–"
        status = entry.status if not entry.message else f"{entry.status}: {entry.message[:80]}"
        table.add_row(entry.id, auto, awaiting, status)
    console.print(table)
    return entries, events.refusals


def _exit_status(entries: list[BatchEntry], refusals: list[str]) -> None:
    """Exit 5 when an input held nothing to grade, 4 when the grader failed on a submission."""
    if refusals:
        raise SubmissionError(f"{len(refusals)} input(s) hold nothing to grade (the rest was graded): "
                              + "; ".join(refusals))
    if any(entry.status is EntryStatus.ERROR for entry in entries):
        sys.exit(4)


def _marker_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--worksheet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="Moodle's grading worksheet (CSV) as downloaded: it is written back with Grade and "
                              "Feedback comments, and gives the submission times."),
            click.option("--timestamps", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="CSV of submission times (participant or submission, submitted), without a worksheet."),
            click.option("--extensions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="CSV of extensions (participant or submission, and due or days)."),
            click.option("--marks", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="CSV of a marker's points for manual items (a filled-in copy of gradebook.csv)."),
            click.option("--timezone", help="Time zone of the worksheet's times, e.g. Australia/Melbourne "
                                            "(default: the due date's)."),
        ]
    ):
        function = option(function)
    return function


def _publish(target: Assignment, out: Path, files: MarkerFiles) -> None:
    """Write the gradebook, worksheet, feedback and cohort summary, and say where."""
    with console.status("writing the gradebook, feedback and cohort summary..."):
        result = publish(target, out, files)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    awaiting = [row for row in result.rows if row.awaiting_marker or row.grade.bonus_awaiting]
    if awaiting:
        console.print(f"{len(awaiting)} submission(s) have points awaiting a marker: fill those items in a copy of "
                      f"{out / GRADEBOOK} and pass it with --marks")
    late = [row for row in result.rows if row.late.days]
    if late:
        console.print(f"{len(late)} submission(s) were late; penalties are in {out / GRADEBOOK}")
    for path in result.files:
        console.print(f"wrote {path}", highlight=False)


@cli.command()
@click.argument("assignment")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results folder: one folder per submission, summary.csv, the gradebook and feedback.")
@click.option("--regrade", is_flag=True, help="Grade again submissions already graded from the same files.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Submissions graded at once [default: one per GPU, or 1 without GPUs].")
@click.option("--cluster", metavar="dask://HOST:PORT|slurm", default=None,
              help="Grade on the workers of a running Dask cluster (its scheduler's address; tcp:// works too), "
                   "or on workers started as Slurm jobs (slurm: the rubric's slurm settings, or "
                   "--cluster-config), instead of this machine; not with -j. The assignment, the results folder "
                   "(a Moodle download is unpacked under it) and --data must be on storage every worker sees at "
                   "the same path: this is checked first. A submission whose worker is lost is graded again on "
                   "another.")
@click.option("--cluster-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --cluster slurm: a YAML file whose 'slurm:' section (queue, account, walltime, jobs, "
                   "cores, memory, gpus, gpu_memory_gb, python, directives, prologue, host) overrides the "
                   "rubric's, key by key.")
@_marker_options
@_limit_options
def grade(assignment: str, paths: tuple[Path, ...], out: Path, regrade: bool, workers: int | None,
          cluster: str | None, cluster_config: Path | None, worksheet: Path | None, timestamps: Path | None,
          extensions: Path | None, marks: Path | None, timezone: str | None, **limits: Any) -> None:
    """Grade submissions: each PATH is a Moodle "Download all submissions" zip (or its
    unpacked folder), a notebook, a zip or a folder per student, or a folder holding many
    of those. Results are written as each submission finishes; run again to resume.
    With --cluster dask://HOST:PORT the submissions are graded on a Dask cluster's workers,
    with --cluster slurm on workers started as Slurm jobs."""
    if cluster_config is not None and cluster != "slurm":
        raise UsageError("--cluster-config is read with --cluster slurm only")
    if cluster is not None:
        if workers is not None:
            raise UsageError("-j and --cluster exclude each other: with a cluster, its workers set how many "
                             "submissions are graded at once")
        cluster_address(cluster)  # a malformed address is refused before anything slow
    target = load_assignment(assignment)
    files = MarkerFiles(worksheet=worksheet, timestamps=timestamps, extensions=extensions, marks=marks,
                        timezone=timezone)
    files.validate(target)  # read before grading starts, so a mistake costs no time
    kind, image = limits.pop("sandbox_kind"), limits.pop("image")
    options = _options(**limits)
    check_arguments(target, list(paths), options)
    progress_every()  # a bad setting is refused now, not after the sandbox's probe
    sandbox = _sandbox(kind, image)  # the slow part of starting, once every argument is known good
    entries, refusals = _grade_with_progress(target, list(paths), out=out, options=options, regrade=regrade,
                                             sandbox=sandbox, workers=workers, cluster=cluster,
                                             cluster_config=cluster_config)
    _publish(target, out, files)
    _exit_status(entries, refusals)


@cli.command(name="gradebook")
@click.argument("assignment")
@click.argument("results", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_marker_options
def gradebook_command(assignment: str, results: Path, **files: Any) -> None:
    """Write the gradebook, the filled Moodle worksheet, feedback and the cohort summary
    again from RESULTS, without grading (after new extensions or a marker's marks)."""
    _publish(load_assignment(assignment), results, MarkerFiles(**files))


@cli.command()
@click.argument("assignment")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the sample submissions and their results.")
def demo(assignment: str, out: Path) -> None:
    """Grade a sample batch with the default settings, as a marker would: a Moodle
    download of the reference solution and broken variants of it (each student's zip
    inside), with Moodle's grading worksheet; then write the gradebook and feedback.
    It runs in the local sandbox on synthetic data, so that it needs no grading image
    and no course data."""
    target = load_assignment(assignment)
    download, worksheet = write_moodle_sample(target, out / "moodle")
    console.print(f"sample batch: {download} and its grading worksheet {worksheet}")
    entries, refusals = _grade_with_progress(target, [download], out=out / "results",
                                             options=GradeOptions(synthetic=True), regrade=False,
                                             sandbox="local")
    _publish(target, out / "results", MarkerFiles(worksheet=worksheet))
    console.print(f"per-submission summaries: {out / 'results'}/<submission>/summary.txt")
    _exit_status(entries, refusals)


@cli.command()
@click.argument("assignment")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_limit_options
def check(assignment: str, path: Path, **limits: Any) -> None:
    """Self-check a notebook (or the zip or folder about to be submitted) against the
    public items: naming and packaging first, then each public check with what was
    measured, then what is marked by hand. Fast by default (a per-cell limit, synthetic
    data); exits 1 when a public item is not yet earned."""
    target = load_assignment(assignment)
    kind, image = limits.pop("sandbox_kind"), limits.pop("image")
    notebooks = notebooks_given(target.rubric, path)  # one notebook: check the items graded from it
    held = notebooks_held(target.rubric, notebook_names([path]), only=notebooks)
    synthetic = datasets_read(target.rubric, held) and not (limits["data_dir"] or limits["synthetic"])
    if synthetic:
        limits["synthetic"] = True
    if limits["cell_timeout"] is None:
        limits["cell_timeout"] = target.rubric.limits.check_cell_timeout_s
    options = _options(**limits, public_only=True, notebooks=notebooks)  # refused before the sandbox's probe
    sandbox = _sandbox(kind, image)
    if synthetic:
        console.print("no --data given: the notebooks run on small synthetic stand-ins of the datasets")
    with console.status("running the notebooks and the public checks..."):
        result = grade_submission(target, path, options=options, sandbox=sandbox)
    render_check(result, console=console, cell_timeout=limits["cell_timeout"])
    missing = [i for i in result.automatic if i.status is not Status.PASSED]
    if missing or result.problem:
        console.print(f"[yellow]{len(missing)} public item(s) not yet earned.[/]")
        sys.exit(1)
    console.print("[green]every public automatic item is earned.[/]")


@cli.command()
@click.argument("assignment")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle's zip [default: <assignment>-student.zip].")
def bundle(assignment: str, out: Path | None) -> None:
    """The student bundle: templates, public data, the grader and the public checks, with
    a how-to. Nothing hidden is in it."""
    target = load_assignment(assignment)
    path = student_bundle(target, out or Path(f"{target.id}-student.zip"))
    console.print(f"wrote {path}: give it to students (see HOW-TO.md inside)", highlight=False)


@cli.command()
@click.argument("assignment")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("autograder.zip"),
              show_default=True, help="The zip to upload as the Gradescope assignment's autograder.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The course's data folder, put in the zip (without it: synthetic stand-ins).")
def gradescope(assignment: str, out: Path, data_dir: Path | None) -> None:
    """Build the Gradescope autograder zip (setup.sh and run_autograder at its root)."""
    from .marking.gradescope import build_autograder

    target = load_assignment(assignment)
    if target.rubric.datasets() and data_dir is None:
        console.print("no --data given: on Gradescope the notebooks will run on synthetic stand-ins of the datasets")
    path = build_autograder(target, out, data_dir=data_dir)
    console.print(f"wrote {path}: upload it in the Gradescope assignment's Configure Autograder page",
                  highlight=False)


@cli.command(name="gradescope-run")
@click.argument("assignment")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/autograder"),
              show_default=True, help="Gradescope's folder: submission/, results/, submission_metadata.json.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--synthetic", is_flag=True)
@click.option("--prepare", is_flag=True, help="Only make the synthetic stand-ins (setup.sh does, once).")
def gradescope_run(assignment: str, root: Path, data_dir: Path | None, synthetic: bool, prepare: bool) -> None:
    """Inside Gradescope (run_autograder calls it): grade the submission, write results.json."""
    from .marking.gradescope import prepare as prepare_data
    from .marking.gradescope import run

    target = load_assignment(assignment)
    if prepare:
        prepare_data(target, synthetic=synthetic)
        return
    document = run(target, root, data_dir=data_dir, synthetic=synthetic)
    console.print(f"score {document['score']:g}; results in {root / 'results' / 'results.json'}", highlight=False)


@cli.command()
@click.argument("assignment")
@click.option("--check", "check_only", is_flag=True, help="Only report whether the committed files are current.")
def templates(assignment: str, check_only: bool) -> None:
    """Generate the student templates (and public data) from the reference solutions."""
    from .course.templates import generate, stale  # otter loads slowly

    target = load_assignment(assignment)
    if check_only:
        problems = stale(target)
        for problem in problems:
            console.print(f"[red]stale:[/] {problem}")
        if problems:
            console.print(f"run [bold]autograder templates {target.id}[/] and commit the result")
            sys.exit(1)
        console.print(f"templates and public data of {target.id} are current")
        return
    for path in generate(target):
        console.print(f"wrote {path}")


@cli.command(name="verify")
@click.argument("assignment")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The course's data folder (datasets and pretrained weights).")
@click.option("--synthetic", is_flag=True, help="Without --data: synthetic stand-ins.")
@click.option("--scale", type=click.Choice(SCALES), default="full", show_default=True,
              help="Size of the synthetic stand-ins.")
@click.option("--quick", is_flag=True, help="The rubric's small epochs and sizes instead of the notebooks' own.")
@click.option("--device", default="auto", show_default=True, help="DEVICE given to the notebooks: auto, cpu, cuda.")
@click.option("--cell-timeout", type=float, help="Seconds per cell (default: the rubric's).")
@click.option("--total-timeout", type=float, help="Seconds per notebook (default: the rubric's).")
@_sandbox_options
def verify_command(assignment: str, data_dir: Path | None, synthetic: bool, scale: str, quick: bool, device: str,
                   cell_timeout: float | None, total_timeout: float | None, sandbox_kind: str,
                   image: str | None) -> None:
    """Run the reference notebooks at full size and report every metric against its
    threshold, with timings: how course staff prove the thresholds hold."""
    target = load_assignment(assignment)
    options = GradeOptions(data_dir=data_dir, synthetic=synthetic, synthetic_scale=scale, full_size=not quick,
                           parameters={"DEVICE": device}, cell_timeout_s=cell_timeout, total_timeout_s=total_timeout,
                           names={**FLAGS, "total_timeout_s": "--total-timeout", "synthetic_scale": "--scale"})
    sandbox = _sandbox(sandbox_kind, image)
    with console.status(f"running the reference notebooks of {target.id}..."):
        result = verify(target, options=options, sandbox=sandbox)
    table = Table(title=f"{target.id}: reference solutions ({result.seconds:.0f} s)", title_justify="left")
    for column in ("Item", "Measured against the rubric", "Points", "Status"):
        table.add_column(column)
    for item in result.grade.automatic:
        shown = item.reason if item.measurements or item.status is not Status.PASSED else "check passed"
        table.add_row(item.id, shown, f"{item.earned:g} / {item.max_points:g}", str(item.status))
    console.print(table)
    for notebook in result.grade.notebooks:
        note = f"  [red]{notebook.problem}[/]" if notebook.problem else ""
        console.print(f"{notebook.notebook}: {notebook.seconds:.1f} s{note}")
    for line in result.provenance:
        console.print(line)
    bonus_earned, bonus_max = result.bonus
    bonus = f" and {bonus_earned:g} of {bonus_max:g} bonus" if bonus_max else ""
    if not result.complete:
        grade = result.grade
        console.print(f"[red]the reference earns {grade.auto_points:g} of {grade.auto_max:g} automatic points"
                      f"{bonus}[/]")
        if result.failed_on:
            withheld = sum(item.max_points for item in grade.automatic if item.id in result.failed_on)
            console.print(f"[red]the grader failed on {', '.join(result.failed_on)} ({withheld:g} points "
                          "withheld): those checks raised instead of giving a verdict, so nothing is proven there[/]")
        sys.exit(1)
    console.print(f"[green]the reference earns every automatic point ({result.grade.auto_max:g}"
                  f"{f', and {bonus_max:g} bonus' if bonus_max else ''})[/]")


@cli.group()
def image() -> None:
    """The Docker grading image (for --sandbox docker)."""


@image.command(name="build")
@click.option("--base", help="Base image: a CUDA PyTorch image (the Dockerfile's default) or a local one.")
@click.option("--tag", default=DEFAULT_IMAGE, show_default=True)
def image_build(base: str | None, tag: str) -> None:
    """Build the grading image from the Dockerfile, with the host's pip settings."""
    from .course.assignment import project_home
    from .sandboxes.docker_sandbox import build_image

    built = build_image(project_home(), tag=tag, base=base, echo=lambda line: console.print(line, markup=False,
                                                                                            highlight=False))
    console.print(f"[green]built {built}[/]; grade with --sandbox docker")


@cli.group()
def data() -> None:
    """Datasets in their real formats: synthetic stand-ins, and checking a data folder."""


@data.command(name="synth")
@click.argument("dataset")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", type=click.Choice(SCALES), default="small", show_default=True,
              help="small: seconds to make, for tests; full: the real dataset's sizes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--assignment", "assignment_ref", help="The assignment whose rubric declares DATASET (npz:).")
def data_synth(dataset: str, folder: Path, scale: str, seed: int, assignment_ref: str | None) -> None:
    """Write a synthetic DATASET into FOLDER in exactly the real on-disk format: one of
    autograder's datasets, or one an assignment's rubric declares (give --assignment)."""
    if assignment_ref:
        _ = load_assignment(assignment_ref).rubric  # declares its datasets
    if dataset not in DATASETS and not assignment_ref:
        raise UsageError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))} "
                         "(a dataset an assignment declares needs --assignment)")
    with console.status(f"writing synthetic {dataset} ({scale})..."):
        written = synth(dataset, folder, scale=scale, seed=seed)
    for path in written:
        console.print(f"wrote {path}")


@data.command(name="check")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--assignment", "assignment_ref", help="Check the datasets this assignment reads (default: all).")
def data_check(folder: Path, assignment_ref: str | None) -> None:
    """Say whether FOLDER holds the datasets, in the layout the grader reads."""
    names = load_assignment(assignment_ref).rubric.datasets() if assignment_ref else sorted(DATASETS)
    problems = missing(list(names), folder)
    for problem in problems:
        console.print(f"[red]missing:[/] {problem}")
    if problems:
        sys.exit(1)
    console.print(f"{folder} holds {', '.join(names)}")


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
    problems = collect_problems(target)
    for problem in problems:
        console.print(f"[red]checks:[/] {problem}", markup=True)
    if problems:
        sys.exit(3)
    console.print("the checks match the rubric")


def main() -> None:
    try:
        with stop_on_signals():  # SIGTERM and SIGHUP stop a command as Ctrl-C does
            cli.main(standalone_mode=False)
    except click.exceptions.Abort as abort:
        if isinstance(abort.__cause__, KeyboardInterrupt):
            errors.print(stopped_message(abort.__cause__, None), highlight=False)
            sys.exit(exit_code(abort.__cause__))
        errors.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except AutograderError as error:
        errors.print(f"[red]error:[/] {error.message}", markup=True, highlight=False)
        sys.exit(error.exit_code)
    except KeyboardInterrupt as stop:
        errors.print(stopped_message(stop, None), highlight=False)
        sys.exit(exit_code(stop))
