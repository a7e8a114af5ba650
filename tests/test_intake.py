"""Intake and preflight: real zips, batch folders, notebook names, broken files."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path

import pytest

from autograder.errors import UsageError
from autograder.grading.intake import discover, open_submission, submission_id
from autograder.grading.preflight import match_notebooks, read_notebook

from .conftest import write_notebook


def test_zip_entries_that_escape_or_link_are_skipped(tmp_path: Path):
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("work/a.ipynb", "{}")
        bundle.writestr("../escape.ipynb", "{}")
        bundle.writestr("/etc/absolute.ipynb", "{}")
        link = zipfile.ZipInfo("work/link.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    submission = open_submission(archive)
    try:
        assert [p.name for p in submission.notebooks()] == ["a.ipynb"]
        assert not (tmp_path / "escape.ipynb").exists()
        notes = " ".join(submission.notes)
        assert "'../escape.ipynb'" in notes and "leaves the submission folder" in notes
        assert "links are not extracted" in notes
        assert "/etc/absolute.ipynb" in notes
    finally:
        submission.close()


def test_a_zip_bomb_by_ratio_is_skipped(tmp_path: Path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("big.ipynb", b"0" * (8 << 20))
    submission = open_submission(archive)
    try:
        assert submission.notebooks() == [] and "compressed" in submission.notes[0]
    finally:
        submission.close()


def test_an_unreadable_zip_is_a_problem_not_an_exception(tmp_path: Path):
    archive = tmp_path / "junk.zip"
    archive.write_bytes(b"\x00\x01binary junk")
    submission = open_submission(archive)
    assert submission.root is None and "junk.zip cannot be unpacked" in submission.problem


def test_discover_expands_a_batch_folder(tmp_path: Path):
    batch = tmp_path / "batch"
    write_notebook(batch / "alice" / "a.ipynb", "x = 1")
    (batch / "bob.zip").write_bytes(b"")
    write_notebook(batch / "carol.ipynb", "x = 1")
    (batch / "notes.txt").write_text("ignored", encoding="utf-8")
    (batch / "__MACOSX").mkdir()
    (batch / "empty-folder").mkdir()
    assert [p.name for p in discover([batch], ["a.ipynb"])] == ["alice", "bob.zip", "carol.ipynb"]
    with pytest.raises(UsageError, match="no such file"):
        discover([tmp_path / "missing"], ["a.ipynb"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no notebooks"):
        discover([tmp_path / "empty"], ["a.ipynb"])


def test_a_student_folder_is_one_submission(tmp_path: Path):
    student = tmp_path / "student"
    write_notebook(student / "Q1.ipynb", "x = 1")
    write_notebook(student / "drafts" / "old.ipynb", "x = 1")  # expected names decide
    assert discover([student], ["Q1.ipynb", "Q3.ipynb"]) == [student]
    misnamed = tmp_path / "misnamed"
    write_notebook(misnamed / "my work.ipynb", "x = 1")
    (misnamed / "data").mkdir()
    assert discover([misnamed], ["Q1.ipynb"]) == [misnamed]


def test_a_folder_of_notebooks_for_a_one_notebook_assignment_is_a_batch(tmp_path: Path):
    for name in ("alice.ipynb", "bob.ipynb"):
        write_notebook(tmp_path / "batch" / name, "x = 1")
    assert [p.name for p in discover([tmp_path / "batch"], ["trivial.ipynb"])] == ["alice.ipynb", "bob.ipynb"]


def test_submission_ids_are_safe_folder_names():
    assert submission_id(Path("Jane Doe_123_assignsubmission_file.zip")) == "Jane_Doe_123_assignsubmission_file"
    assert submission_id(Path("../..")) == "submission"


def test_notebook_names_match_exactly_then_loosely():
    submitted = [Path("q3 regression (1).ipynb"), Path("Q1_Q2_Calculations.ipynb"), Path("scratch.ipynb")]
    matched, findings = match_notebooks(["Q1_Q2_calculations.ipynb", "Q3_regression.ipynb", "Q4.ipynb"], submitted)
    assert matched == {
        "Q1_Q2_calculations.ipynb": Path("Q1_Q2_Calculations.ipynb"),
        "Q3_regression.ipynb": Path("q3 regression (1).ipynb"),
    }
    messages = {(f.level, f.file, f.message) for f in findings}
    assert ("error", "Q4.ipynb", "expected notebook is missing") in messages
    assert ("info", "scratch.ipynb", "not an expected notebook; not graded") in messages


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "it is empty (0 bytes)"),
        (b"\xff\xfe\x00binary", "it is not text"),
        (b"{not json", "it is not JSON"),
        (b'{"a": 1}', "JSON but not a notebook"),
    ],
)
def test_broken_notebooks_get_a_reason(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(reason)):
        read_notebook(path)


def test_the_only_notebook_of_a_one_notebook_assignment_is_graded_whatever_its_name():
    matched, findings = match_notebooks(["trivial.ipynb"], [Path("student07.ipynb")])
    assert matched == {"trivial.ipynb": Path("student07.ipynb")}
    assert [(f.level, f.file) for f in findings] == [("warning", "student07.ipynb")]
    matched, _ = match_notebooks(["trivial.ipynb"], [Path("a.ipynb"), Path("b.ipynb")])
    assert matched == {}  # two candidates: neither is guessed


def test_a_notebook_without_a_parameters_cell_is_named_in_a_finding(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The grader's values then go at the top, where the notebook's own later values win: the
    student is told, for the notebook concerned (papermill's own warning names none)."""
    from autograder.course.assignment import load_assignment
    from autograder.grading.execute import inject_parameters
    from autograder.grading.preflight import preflight

    from .conftest import TRIVIAL

    rubric = load_assignment(TRIVIAL).rubric
    for parameters, warned in (("SCALE = 1", False), (None, True)):
        folder = tmp_path / str(warned)
        write_notebook(folder / "trivial.ipynb", "answer = 42", parameters=parameters)
        submission = open_submission(folder)
        try:
            found = preflight(rubric, submission, parameters={"SCALE": 2, "EPOCHS": 1}).findings
            quiet = preflight(rubric, submission, parameters={}).findings  # nothing to set: nothing to say
        finally:
            submission.close()
        said = [f for f in found if "no cell is tagged `parameters`" in f.message]
        assert [(f.level, f.file) for f in said] == ([("warning", "trivial.ipynb")] if warned else [])
        assert not warned or "sets SCALE, EPOCHS in a cell of its own" in said[0].message
        assert not [f for f in quiet if "parameters" in f.message]
    with caplog.at_level("WARNING"):
        injected = inject_parameters(read_notebook(folder / "trivial.ipynb"), {"SCALE": 2})
    assert "SCALE = 2" in injected.cells[0].source and not caplog.records
