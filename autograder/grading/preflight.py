"""Look at a submission's files before running anything: which notebook is which, are
they valid notebooks, were their outputs saved. Problems become findings, never crashes.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypeVar, cast

import nbformat
from nbformat import NotebookNode

from ..course.rubric import FileRules, Rubric
from .intake import Submission, normal_name
from .record import Finding

_MATCH_CUTOFF = 0.6


@dataclass
class Preflight:
    notebooks: dict[str, NotebookNode] = field(default_factory=dict)  # expected name -> notebook
    sources: dict[str, Path] = field(default_factory=dict)  # expected name -> submitted file
    unavailable: dict[str, str] = field(default_factory=dict)  # expected name -> why not
    findings: list[Finding] = field(default_factory=list)


def notebooks_given(rubric: Rubric, path: Path) -> tuple[str, ...]:
    """The rubric's notebooks a self-check of ``path`` stands for: the one it matches when
    it is a single notebook; empty (all of them) for a folder or zip."""
    if path.suffix.lower() != ".ipynb":
        return ()
    matched, _ = match_notebooks([spec.file for spec in rubric.notebooks], [path])
    return tuple(matched)


def notebooks_held(rubric: Rubric, files: Sequence[PurePath], *, only: tuple[str, ...] = ()) -> list[str]:
    """The rubric's notebooks (``only`` these, if given) that some of ``files`` would be
    graded as: how a batch knows, before its intake, which datasets its submissions read."""
    expected = [spec.file for spec in rubric.notebooks if not only or spec.file in only]
    if len(expected) == 1 and files:  # one notebook asked: any notebook is graded as it
        return expected
    return [name for name in expected if any(_hits(name, list(files), rule) for rule in _RULES)]


def notebooks_submitted(rubric: Rubric, submission: Submission, *, only: tuple[str, ...] = ()) -> list[str]:
    """The rubric's notebooks (``only`` these, if given) that ``submission`` holds."""
    if submission.problem:
        return []
    expected = [spec.file for spec in rubric.notebooks if not only or spec.file in only]
    matched, _ = match_notebooks(expected, submission.notebooks())
    return [name for name in expected if name in matched]


_RULES = ("exact", "normal", "close")
_P = TypeVar("_P", bound=PurePath)


def _hits(name: str, files: list[_P], rule: str) -> list[_P]:
    if rule == "exact":
        return [p for p in files if p.name == name]
    if rule == "normal":
        return [p for p in files if normal_name(p.name) == normal_name(name)]
    names = {normal_name(p.name): p for p in files}
    close = difflib.get_close_matches(normal_name(name), list(names), n=1, cutoff=_MATCH_CUTOFF)
    return [names[close[0]]] if close else []


def match_notebooks(expected: list[str], submitted: list[Path]) -> tuple[dict[str, Path], list[Finding]]:
    """Pair expected notebook names with submitted files: exact, then normalised, then close."""
    matched: dict[str, Path] = {}
    findings: list[Finding] = []
    left = list(submitted)
    for rule in _RULES:
        for name in expected:
            if name in matched:
                continue
            hits = _hits(name, left, rule)
            if hits:
                matched[name] = hits[0]
                left.remove(hits[0])
                if rule != "exact":
                    findings.append(
                        Finding("warning", hits[0].name, f"graded as {name} (the expected name is {name})")
                    )
    if len(expected) == 1 and not matched and len(left) == 1:  # one notebook asked, one given, whatever its name
        matched[expected[0]] = left.pop()
        findings.append(Finding("warning", matched[expected[0]].name,
                                f"graded as {expected[0]}, the only notebook submitted (the expected name is "
                                f"{expected[0]})"))
    for name in expected:
        if name not in matched:
            findings.append(Finding("error", name, "expected notebook is missing"))
    for extra in left:
        findings.append(Finding("info", extra.name, "not an expected notebook; not graded"))
    return matched, findings


def read_notebook(path: Path) -> NotebookNode:
    """Read any notebook version as v4; raise ValueError with a readable reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("it is not text (binary content)") from None
    if not text.strip():
        raise ValueError("it is empty (0 bytes)")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"it is not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise ValueError("it is JSON but not a notebook (no cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises several kinds for malformed documents
        raise ValueError(f"it is not a readable notebook ({type(error).__name__}: {error})") from None
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and not isinstance(cell.get("source"), str):
            raise ValueError("a code cell has no source")
    return cast(NotebookNode, nb)


def unsaved_outputs(nb: NotebookNode) -> tuple[int, int]:
    """(code cells never run, code cells) — saved outputs carry an execution count."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    never = [c for c in code if c.get("execution_count") is None]
    return len(never), len(code)


#: What a student reads when the grader's values cannot go where the notebook expects them.
_NO_PARAMETERS = ("no cell is tagged `parameters`, so the grader sets {names} in a cell of its own at the top; "
                  "where this notebook sets them again, its own values win (the template's parameters cell "
                  "carries the tag)")


def has_parameters_cell(nb: NotebookNode) -> bool:
    """Whether a code cell is tagged ``parameters`` (papermill's convention)."""
    return any(cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
               for cell in nb.cells)


def preflight(rubric: Rubric, submission: Submission, *, only: tuple[str, ...] = (),
              parameters: Mapping[str, Any] | None = None) -> Preflight:
    """Match and read the expected notebooks (``only`` these, if given); ``parameters``
    are the values the run gives the notebooks' parameters cells."""
    result = Preflight()
    expected = [spec.file for spec in rubric.notebooks if not only or spec.file in only]
    if submission.problem:
        for name in expected:
            result.unavailable[name] = submission.problem
        result.findings.append(Finding("error", submission.source.name, submission.problem))
        return result
    for note in submission.notes:
        result.findings.append(Finding("warning", submission.source.name, note))
    matched, findings = match_notebooks(expected, submission.notebooks())
    result.findings.extend(findings)
    for name in expected:
        path = matched.get(name)
        if path is None:
            result.unavailable[name] = f"{name} was not submitted"
            continue
        try:
            nb = read_notebook(path)
        except ValueError as error:
            reason = f"{path.name} is not a valid notebook: {error}"
            result.unavailable[name] = reason
            result.findings.append(Finding("error", path.name, reason))
            continue
        result.notebooks[name] = nb
        result.sources[name] = path
        if parameters and not has_parameters_cell(nb):
            result.findings.append(Finding("warning", path.name, _NO_PARAMETERS.format(names=", ".join(parameters))))
        never, total = unsaved_outputs(nb)
        if total and never:
            asked = rubric.policy.files.outputs_saved
            required = " (the handout asks for notebooks with their outputs)" if asked else ""
            result.findings.append(
                Finding("warning", path.name,
                        f"{never} of {total} code cells have no saved output (never run){required}")
            )
    result.findings.extend(file_findings(rubric.policy.files, submission, result.sources))
    return result


def file_findings(rules: FileRules, submission: Submission, sources: dict[str, Path]) -> list[Finding]:
    """The handout's rules on submitted files: the zip's name, forbidden and required types,
    HTML exports beside the notebooks."""
    findings: list[Finding] = []
    if submission.root is None or submission.root.is_file():
        return findings  # a single notebook (a student checking one): packaging is not in question
    files = submission.files()
    root = submission.root
    if rules.archive is not None:
        zips = [name for name in submission.uploaded if name.lower().endswith(".zip")]
        example = f" (for example {rules.archive_example})" if rules.archive_example else ""
        if not zips:
            findings.append(Finding("warning", submission.source.name, f"no zip was submitted; the handout asks for "
                                                                        f"one zip named as {rules.archive}{example}"))
        for name in zips:
            if not re.fullmatch(rules.archive, name):
                findings.append(Finding("warning", name, f"the zip is not named as the handout asks: {rules.archive}"
                                                         f"{example}"))
    suffixes = {path.suffix.lower() for path in files}
    for path in files:
        if path.suffix.lower() in {s.lower() for s in rules.forbidden}:
            shown = path.relative_to(root)
            findings.append(Finding("warning", str(shown), f"{path.suffix} files are not assessed (the handout "
                                                           f"forbids {', '.join(rules.forbidden)})"))
    for suffix in rules.required:
        if suffix.lower() not in suffixes:
            findings.append(Finding("warning", submission.source.name, f"no {suffix} file was submitted; the handout "
                                                                        "asks for one"))
    if rules.html_export:
        stems = {normal_name(path.stem) for path in files if path.suffix.lower() in (".html", ".htm")}
        for path in sources.values():
            if normal_name(path.stem) not in stems:
                findings.append(Finding("warning", path.name, "its HTML export is missing (the handout asks for "
                                                              f"{path.stem}.html beside it)"))
    return findings
