"""The README's two set-up commands, and CI running exactly the README's test command."""

from __future__ import annotations

import os
import re

from .conftest import ROOT


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the Set-up section needs a ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_has_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    assert "autograder demo" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert setup_commands()[1] in ci.read_text(encoding="utf-8").splitlines()
