"""Helpers shared by datasets stored as a single file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def single_file_problems(folder: Path, name: str, load: Callable[[Path], Any]) -> list[str]:
    """What is wrong with ``folder/name``: missing, or refused by the dataset's ``load``."""
    if not (folder / name).is_file():
        return [f"{folder / name} is missing"]
    try:
        load(folder)
    except ValueError as error:
        return [str(error)]
    return []


def files_problems(paths: list[Path], read: Callable[[Path], Any], what: str) -> list[str]:
    """What is wrong with each of ``paths``: missing (``what`` says what it should be), or
    refused by ``read``."""
    problems = []
    for path in paths:
        if not path.is_file():
            problems.append(f"{path} is missing ({what})")
            continue
        try:
            read(path)
        except ValueError as error:
            problems.append(str(error))
    return problems
