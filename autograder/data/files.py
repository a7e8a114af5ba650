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
