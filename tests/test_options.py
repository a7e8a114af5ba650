"""Defaults typed once, the library's defaults the command line's, bad values refused
where they are made with a message naming where they came from."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import click
import pytest
import yaml

from autograder.authoring.verify import verify
from autograder.cli import cli
from autograder.course.rubric import Limits, load_rubric
from autograder.errors import RubricError, UsageError
from autograder.grading.pipeline import GradeOptions, grade_submission, resources, start
from autograder.marking.batch import grade_batch
from autograder.sandboxes.backends import as_sandbox
from autograder.sandboxes.resources import Resources
from autograder.sandboxes.sandbox import LocalSandbox

from .conftest import TRIVIAL, run_cli, write_notebook

SHARED = ("memory_mb", "cpus", "processes", "scratch_mb", "gpus")


def test_the_rubrics_kernel_limits_default_to_the_sandboxes_resources():
    limits, kernel = Limits(), Resources()
    assert {name: getattr(limits, name) for name in SHARED} == {name: getattr(kernel, name) for name in SHARED}
    made = resources(limits)
    assert {name: getattr(made, name) for name in SHARED} == {name: getattr(kernel, name) for name in SHARED}
    assert made.cpu_seconds and made.cpu_seconds > limits.total_timeout_s  # running, then being probed


def _command(name: str) -> click.Command:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    return command


def _default(command: click.Command, option: str) -> object:
    [param] = [p for p in command.params if option in getattr(p, "opts", ())]
    return param.default


@pytest.mark.parametrize("function", [grade_batch, grade_submission, start, verify], ids=lambda f: f.__name__)
def test_the_librarys_sandbox_default_is_the_command_lines(function):
    default = inspect.signature(function).parameters["sandbox"].default
    for name in ("grade", "check", "verify"):
        assert _default(_command(name), "--sandbox") == default == "auto"


def test_the_librarys_workers_default_is_the_command_lines():
    """Both leave it to the machine: one per GPU, one without GPUs."""
    assert inspect.signature(grade_batch).parameters["workers"].default is None
    assert _default(_command("grade"), "--workers") is None


def test_a_sandbox_is_given_as_a_backend_or_by_name():
    local = LocalSandbox()
    assert as_sandbox(local) is local
    assert isinstance(as_sandbox("local"), LocalSandbox)
    with pytest.raises(UsageError, match="--sandbox 'podman': expected one of auto, docker, local"):
        as_sandbox("podman")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cell_timeout_s": 0}, "GradeOptions.cell_timeout_s 0: must be a positive number of seconds"),
        ({"total_timeout_s": -5.0}, "GradeOptions.total_timeout_s -5.0: must be a positive"),
        ({"kernel_start_timeout_s": 0.0}, "GradeOptions.kernel_start_timeout_s 0.0"),
        ({"memory_mb": 10}, "GradeOptions.memory_mb 10: a kernel needs at least 64 MB"),
        ({"scratch_mb": 0}, "GradeOptions.scratch_mb 0"),
        ({"gpus": "the fast one"}, "GradeOptions.gpus 'the fast one': expected auto, all, none, or GPU indices"),
        ({"synthetic_scale": "huge"}, "GradeOptions.synthetic_scale 'huge': expected one of small, full"),
        ({"parameters": {"not a name": 1}}, "GradeOptions.parameters 'not a name'"),
        ({"notebooks": "Q1.ipynb"}, "GradeOptions.notebooks 'Q1.ipynb': expected a tuple"),
    ],
)
def test_grading_options_are_checked_when_made(values, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GradeOptions(**values)


def test_good_grading_options_are_kept_as_given():
    options = GradeOptions(cell_timeout_s=30, memory_mb=64, gpus="0,1", synthetic_scale="full",
                           parameters={"EPOCHS": 1}, notebooks=("a.ipynb",))
    assert options.gpus == "0,1" and options.memory_mb == 64 and options.parameters == {"EPOCHS": 1}
    assert dataclasses.replace(options, cell_timeout_s=10).cell_timeout_s == 10
    with pytest.raises(UsageError, match="GradeOptions.cell_timeout_s -1"):
        dataclasses.replace(options, cell_timeout_s=-1)  # checked again when changed


def test_a_bad_value_is_named_as_its_caller_calls_it():
    with pytest.raises(UsageError, match=r"^--cell-timeout -3: must be a positive number of seconds$"):
        GradeOptions(cell_timeout_s=-3, names={"cell_timeout_s": "--cell-timeout"})
    assert GradeOptions(names={"gpus": "--gpus"}) == GradeOptions()  # how it is named is not what it is


def test_resources_are_checked_when_made():
    with pytest.raises(UsageError, match="Resources.gpus 'x'"):
        Resources(gpus="x")
    with pytest.raises(UsageError, match="Resources.processes 0"):
        Resources(processes=0)
    assert Resources(memory_mb=None, processes=None).memory_mb is None  # None: unlimited


def test_a_bad_limit_in_a_rubric_names_the_file_and_the_field(tmp_path: Path):
    rubric = yaml.safe_load((TRIVIAL / "rubric.yaml").read_text(encoding="utf-8"))
    rubric["limits"].update(gpus="the fast one", memory_mb=16)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(rubric), encoding="utf-8")
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    text = str(caught.value)
    assert str(path) in text
    assert "field 'limits' › field 'gpus'" in text and "field 'limits' › field 'memory_mb'" in text
    assert "expected auto, all, none, or GPU indices" in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cell-timeout", "-5"], "--cell-timeout -5.0: must be a positive number of seconds"),
        (["--gpus", "fast"], "--gpus 'fast': expected auto, all, none, or GPU indices"),
        (["--memory", "10m"], "--memory '10m': a kernel needs at least 64m"),
    ],
)
def test_the_command_line_names_the_flag_of_a_bad_value(tmp_path: Path, flags, message):
    notebook = write_notebook(tmp_path / "trivial.ipynb", "answer = 42")
    for command in (["grade", TRIVIAL, notebook, "-o", tmp_path / "out"], ["check", TRIVIAL, notebook]):
        done = run_cli(*command, "--sandbox", "local", *flags, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in " ".join((done.stdout + done.stderr).split()), done.stderr
        assert "students' code runs in" not in done.stderr  # refused before the sandbox was probed
    assert not (tmp_path / "out").exists()
