"""Moodle downloads in every form, built in code, taken apart and graded end to end;
the grading worksheet's round trip."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import stat
import tempfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from autograder.course.rubric import FileRules
from autograder.errors import UsageError
from autograder.grading.intake import Intake, open_submission
from autograder.grading.moodle import Upload, parse_entry, write_download
from autograder.grading.preflight import file_findings
from autograder.marking.worksheet import Worksheet, write_worksheet

from .conftest import TRIVIAL, TRIVIAL_CELLS, notebook, run_cli, trivial_copy

GOOD = nbformat.writes(notebook(*TRIVIAL_CELLS, parameters="SCALE = 1")).encode()
BROKEN = nbformat.writes(notebook(TRIVIAL_CELLS[0], "def double(x):\n    return x", TRIVIAL_CELLS[2])).encode()


def student_zip(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jane Doe_1234567_assignsubmission_file", ("Jane Doe", "1234567", "file", None)),
        ("Jane Doe_1234567_assignsubmission_file_", ("Jane Doe", "1234567", "file", "")),
        ("Jane Doe_1234567_assignsubmission_file_A1_Part1.ipynb", ("Jane Doe", "1234567", "file", "A1_Part1.ipynb")),
        # a name with underscores and digits of its own: split on the last _<digits>_assignsubmission_
        ("Anna_Lee_2_12345_assignsubmission_file_", ("Anna_Lee_2", "12345", "file", "")),
        ("Anna Lee 2_12345_assignsubmission_file_Q_7_notes.ipynb", ("Anna Lee 2", "12345", "file", "Q_7_notes.ipynb")),
        ("Jane Doe_1234567_assignsubmission_onlinetext_onlinetext.html",
         ("Jane Doe", "1234567", "onlinetext", "onlinetext.html")),
        ("Default group_assignsubmission_file", ("Default group", "", "file", None)),
    ],
)
def test_entry_names_are_split_on_the_last_participant_id(name: str, expected: tuple):
    entry = parse_entry(name)
    assert entry is not None and (entry.name, entry.participant, entry.plugin, entry.rest) == expected


def test_names_that_are_not_moodle_entries_are_not_parsed():
    assert parse_entry("A1_Part1_Solutions.ipynb") is None
    assert parse_entry("12345_A1_solution.zip") is None


@pytest.mark.parametrize("mode", ["folders", "folders-old", "flat"])
def test_every_download_form_gives_one_submission_per_student(tmp_path: Path, mode: str):
    uploads = [
        Upload("Jane Doe", "101", {"trivial.ipynb": GOOD, "trivial.html": b"<html></html>"}),
        Upload("Bob_Smith", "102", {"trivial.ipynb": BROKEN}),  # Moodle turns the underscore into a space
    ]
    download = write_download(tmp_path / "download.zip", uploads, mode=mode)
    with Intake([download], ["trivial.ipynb"]) as intake:
        found = {c.id: c for c in intake.candidates}
        assert set(found) == {"Jane_Doe_101", "Bob_Smith_102"}
        jane = found["Jane_Doe_101"]
        assert (jane.student.participant, jane.student.name) == ("101", "Jane Doe")
        assert sorted(p.name for p in jane.path.iterdir()) == ["trivial.html", "trivial.ipynb"]
        assert (found["Bob_Smith_102"].path / "trivial.ipynb").read_bytes() == BROKEN
        assert intake.notes == []
    assert not jane.path.exists()  # the scratch space goes with the intake


def test_an_unpacked_download_folder_is_read_without_changing_it(tmp_path: Path):
    download = write_download(tmp_path / "download.zip", [Upload("Jane Doe", "101", {"trivial.ipynb": GOOD})])
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(download) as archive:
        archive.extractall(folder)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    (folder / "readme.txt").write_text("not a submission", encoding="utf-8")
    with Intake([folder], ["trivial.ipynb"]) as intake:
        assert [c.id for c in intake.candidates] == ["Jane_Doe_101"]
        assert intake.notes == ["unpacked: readme.txt: not named as Moodle names submissions "
                                "(Name_<id>_assignsubmission_...); ignored"]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "readme.txt") == before


def test_a_students_zip_inside_the_download_is_unpacked_beside_it(tmp_path: Path):
    inner = student_zip(**{"A1/trivial.ipynb": GOOD, "A1/trivial.html": b"<html/>", "report.pdf": b"%PDF-1.4"})
    download = write_download(tmp_path / "d.zip", [Upload("Jane Doe", "101", {"12345_A1_solution.zip": inner})])
    with Intake([download], ["trivial.ipynb"]) as intake:
        submission = open_submission(intake.candidates[0])
        try:
            assert [p.name for p in submission.notebooks()] == ["trivial.ipynb"]
            assert submission.uploaded == ["12345_A1_solution.zip"]
            names = {p.name for p in submission.files()}
            assert {"12345_A1_solution.zip", "trivial.ipynb", "trivial.html", "report.pdf"} <= names
        finally:
            submission.close()


def test_a_batch_fingerprints_each_students_files_once_and_leaves_no_copies(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    from autograder.course.assignment import load_assignment
    from autograder.grading import intake
    from autograder.grading.pipeline import GradeOptions
    from autograder.marking.batch import grade_batch
    from autograder.sandboxes.sandbox import LocalSandbox

    uploads = [Upload("Jane Doe", "101", {"solution.zip": student_zip(**{"trivial.ipynb": GOOD})}),
               Upload("John Roe", "102", {"trivial.ipynb": GOOD})]
    download = write_download(tmp_path / "d.zip", uploads)
    fingerprinted: list[Path] = []
    real = intake.digest
    monkeypatch.setattr(intake, "digest", lambda path: fingerprinted.append(path) or real(path))
    scratch = Path(tempfile.mkdtemp(prefix="ag-", dir="/tmp"))  # short: kernels' sockets live under it
    scratch.chmod(0o711)  # the sandbox user passes through, as through /tmp
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    entries = grade_batch(load_assignment(TRIVIAL), [download], out_dir=tmp_path / "out", sandbox=LocalSandbox(),
                          options=GradeOptions())
    assert [(e.id, e.status) for e in entries] == [("Jane_Doe_101", "graded"), ("John_Roe_102", "graded")]
    assert sorted(p.name for p in fingerprinted) == ["Jane_Doe_101", "John_Roe_102"]  # once each
    stored = [json.loads((tmp_path / "out" / e.id / "grade.json").read_text())["digest"] for e in entries]
    assert len(set(stored)) == 2 and all(re.fullmatch("[0-9a-f]{64}", d) for d in stored)
    left = [p.name for p in scratch.iterdir() if p.name.startswith(("autograder-moodle-", "autograder-zip-",
                                                                   "autograder-sub-"))]
    assert left == []  # the intake's and each submission's copies are gone
    again = grade_batch(load_assignment(TRIVIAL), [download], out_dir=tmp_path / "out", sandbox=LocalSandbox(),
                        options=GradeOptions())
    shutil.rmtree(scratch, ignore_errors=True)
    assert [e.status for e in again] == ["skipped", "skipped"]  # the same files: the same fingerprints


def _hostile_download(path: Path) -> Path:
    """A download with a zip-slip entry, a link, a bomb, a broken zip, a zip in a zip, a
    student whose only file is refused, and an entry that is nobody's."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Jane Doe_101_assignsubmission_file/trivial.ipynb", GOOD)
        archive.writestr("Eve Evil_102_assignsubmission_file/../../escape.ipynb", GOOD)
        link = zipfile.ZipInfo("Eve Evil_102_assignsubmission_file/trivial.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("Eve Evil_102_assignsubmission_file/bomb.ipynb", b"0" * (8 << 20))
        archive.writestr("Carl Corrupt_103_assignsubmission_file/work.zip", b"PK\x03\x04 not really a zip")
        archive.writestr("Dora Deep_104_assignsubmission_file/outer.zip",
                         student_zip(**{"inner.zip": student_zip(**{"trivial.ipynb": GOOD}), "trivial.ipynb": GOOD}))
        link = zipfile.ZipInfo("Fay Flat_105_assignsubmission_file_trivial.ipynb")  # flat mode: her only file
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")
        archive.writestr("../nobody.ipynb", GOOD)
    return path


def test_hostile_and_broken_entries_are_noted_on_their_student_and_the_rest_goes_on(tmp_path: Path):
    with Intake([_hostile_download(tmp_path / "hostile.zip")], ["trivial.ipynb"]) as intake:
        found = {c.id: c for c in intake.candidates}
        assert list(found) == ["Carl_Corrupt_103", "Dora_Deep_104", "Eve_Evil_102", "Fay_Flat_105", "Jane_Doe_101"]
        eve = " ".join(found["Eve_Evil_102"].notes)
        assert "escape.ipynb': its path leaves the submission folder" in eve
        assert "links are not extracted" in eve and "compressed" in eve
        assert "links are not extracted" in " ".join(found["Fay_Flat_105"].notes)
        assert found["Jane_Doe_101"].notes == []
        assert len(intake.notes) == 1 and "'../nobody.ipynb': its path leaves the submission folder" in intake.notes[0]
        assert not (tmp_path / "escape.ipynb").exists() and not (tmp_path / "nobody.ipynb").exists()
        carl, dora = (open_submission(c) for c in intake.candidates[:2])
        try:
            assert carl.notebooks() == [] and "work.zip cannot be unpacked" in carl.notes[0]
            assert "a zip inside a zip inside the submission; not unpacked" in dora.notes[0]
            assert len(dora.notebooks()) == 1
        finally:
            carl.close()
            dora.close()


def test_a_students_refused_entries_reach_their_results_and_feedback(tmp_path: Path):
    download = _hostile_download(tmp_path / "hostile.zip")
    out = tmp_path / "results"
    done = run_cli("grade", TRIVIAL, download, "-o", out, "--sandbox", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    for student, said in (("Eve_Evil_102", "its path leaves the submission folder"),
                          ("Eve_Evil_102", "links are not extracted"),
                          ("Fay_Flat_105", "links are not extracted"),
                          ("Carl_Corrupt_103", "work.zip cannot be unpacked"),
                          ("Dora_Deep_104", "a zip inside a zip")):
        findings = json.loads((out / student / "grade.json").read_text(encoding="utf-8"))["findings"]
        assert any(said in f["message"] for f in findings), (student, findings)
        assert said in " ".join((out / student / "summary.txt").read_text(encoding="utf-8").split()), student
        assert said in (out / "feedback" / f"{student}.html").read_text(encoding="utf-8"), student
    fay = json.loads((out / "Fay_Flat_105" / "grade.json").read_text(encoding="utf-8"))
    assert any(f["message"] == "expected notebook is missing" for f in fay["findings"])  # missing, not vanished
    jane = json.loads((out / "Jane_Doe_101" / "grade.json").read_text(encoding="utf-8"))
    assert not any("skipped" in f["message"] for f in jane["findings"])
    assert "nobody.ipynb" in done.stdout and "escape.ipynb" not in done.stdout  # only the nobody's note


def test_names_that_are_not_utf8_are_recovered_or_kept(tmp_path: Path):
    download = tmp_path / "names.zip"
    with zipfile.ZipFile(download, "w") as archive:  # placeholders of the same length, patched below
        archive.writestr("ZoXX Nandu_101_assignsubmission_file/trivial.ipynb", GOOD)
        archive.writestr("JosY Latin_102_assignsubmission_file/trivial.ipynb", GOOD)
    raw = download.read_bytes().replace(b"ZoXX", "Zoë".encode()).replace(b"JosY", b"Jos\xe9")
    download.write_bytes(raw)  # UTF-8 without the UTF-8 flag, and a latin-1 name
    with Intake([download], ["trivial.ipynb"]) as intake:
        names = sorted(c.student.name for c in intake.candidates)
        assert names[1] == "Zoë Nandu"
        assert names[0].startswith("Jos") and len(names[0]) == len("José Latin")
        assert all((c.path / "trivial.ipynb").read_bytes() == GOOD for c in intake.candidates)


def test_a_download_with_no_moodle_entries_and_a_corrupt_download_are_refused(tmp_path: Path):
    (tmp_path / "Jane Doe_1_assignsubmission_file").mkdir()
    (tmp_path / "Jane Doe_1_assignsubmission_file" / "trivial.ipynb").write_bytes(GOOD)
    broken = tmp_path / "download.zip"
    broken.write_bytes(write_download(tmp_path / "ok.zip", [Upload("A B", "1", {"x.ipynb": GOOD})]).read_bytes()[:60])
    with Intake([broken], ["trivial.ipynb"]) as intake:  # unreadable: an input problem, nobody's submission
        assert intake.candidates == []
        assert intake.problems == [f"{broken}: not a zip file"]
    with pytest.raises(UsageError, match="no such file"):
        Intake([tmp_path / "missing.zip"], ["trivial.ipynb"])


def test_file_rules_become_findings(tmp_path: Path):
    inner = student_zip(**{"trivial.ipynb": GOOD, "answers.docx": b"word"})
    folder = tmp_path / "jane"
    folder.mkdir()
    (folder / "JaneDoe_A1.zip").write_bytes(inner)
    rules = FileRules(archive=r"\d+_A1_solution\.zip", archive_example="12345678_A1_solution.zip",
                      forbidden=[".doc", ".docx"], required=[".pdf"], html_export=True)
    submission = open_submission(folder)
    try:
        notebook_path = submission.notebooks()[0]
        messages = [(f.file, f.message) for f in file_findings(rules, submission, {"trivial.ipynb": notebook_path})]
    finally:
        submission.close()
    text = " | ".join(f"{file}: {message}" for file, message in messages)
    assert "JaneDoe_A1.zip: the zip is not named as the handout asks" in text and "12345678_A1_solution.zip" in text
    assert "answers.docx: .docx files are not assessed" in text
    assert "no .pdf file was submitted" in text
    assert "trivial.ipynb: its HTML export is missing" in text
    good = tmp_path / "good"
    good.mkdir()
    (good / "12345678_A1_solution.zip").write_bytes(
        student_zip(**{"trivial.ipynb": GOOD, "trivial.html": b"<html/>", "r.pdf": b"%PDF"}))
    submission = open_submission(good)
    try:
        assert file_findings(rules, submission, {"trivial.ipynb": submission.notebooks()[0]}) == []
    finally:
        submission.close()


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_a_moodle_download_is_graded_end_to_end_and_the_worksheet_comes_back_ready(tmp_path: Path):
    due = datetime(2024, 3, 1, 17, 0, tzinfo=timezone.utc)
    inner = student_zip(**{"work/trivial.ipynb": GOOD, "work/trivial.html": b"<html/>"})
    uploads = [
        Upload("Jane Doe", "101", {"trivial.ipynb": GOOD}),
        Upload("Bob Smith", "102", {"trivial.ipynb": BROKEN}),
        Upload("Zoë Ñandú", "103", {"103_A1_solution.zip": inner}),
        Upload("Carl Corrupt", "104", {"trivial.ipynb": b""}),
        Upload("Team Rocket", "17", {"Trivial (1).ipynb": GOOD, "notes.docx": b"word"}),
    ]
    download = write_download(tmp_path / "download.zip", uploads, mode="folders-old")
    worksheet = write_worksheet(tmp_path / "worksheet.csv", [
        ("101", "Jane Doe", due - timedelta(hours=1)),
        ("102", "Bob Smith", due + timedelta(hours=30)),  # 2 days late
        ("103", "Zoë Ñandú", due),
        ("104", "Carl Corrupt", due + timedelta(days=9)),  # not assessed
        ("201", "Ann Member", due), ("202", "Ben Member", due),
        ("300", "Nobody Here", None),
    ], maximum=50, groups={"201": "Team Rocket", "202": "Team Rocket"})
    policy = {"due": due.isoformat(), "late_penalty_per_day": 0.1, "not_assessed_after_days": 7}
    assignment = trivial_copy(tmp_path / "assignment", policy=policy)
    out = tmp_path / "results"
    done = run_cli("grade", assignment, download, "-o", out, "--worksheet", worksheet, "-j", "2",
                   "--sandbox", "local")
    assert done.returncode == 0, done.stdout + done.stderr

    with (out / "gradebook.csv").open(encoding="utf-8") as handle:
        book = {row["participant"]: row for row in csv.DictReader(handle)}
    assert set(book) == {"101", "102", "103", "104", "17"}
    assert (book["101"]["raw"], book["101"]["final"], book["101"]["days_late"]) == ("9", "9", "0")
    assert (book["102"]["raw"], book["102"]["days_late"], book["102"]["penalty"], book["102"]["final"]) == (
        "7", "2", "2", "5")  # 20% of the maximum of 10
    assert book["103"]["final"] == "9"
    assert book["104"]["final"] == "0" and "not assessed" in book["104"]["late_note"]
    assert book["17"]["members"] == "201 202" and book["17"]["final"] == "9"

    before, after = _csv_rows(worksheet), _csv_rows(out / "moodle-grading-worksheet.csv")
    header = before[0]
    changed = {header.index("Grade"), header.index("Feedback comments")}
    assert len(after) == len(before) and after[0] == header
    for old, new in zip(before[1:], after[1:]):
        assert [v for n, v in enumerate(old) if n not in changed] == [v for n, v in enumerate(new) if n not in changed]
    grades = {row[0]: row[header.index("Grade")] for row in after[1:]}
    assert grades == {"Participant 101": "45.00", "Participant 102": "25.00", "Participant 103": "45.00",
                      "Participant 104": "0.00", "Participant 201": "45.00", "Participant 202": "45.00",
                      "Participant 300": ""}  # scaled to the worksheet's maximum of 50
    feedback = {row[0]: row[header.index("Feedback comments")] for row in after[1:]}
    assert "2 days late" in feedback["Participant 102"] and "2a" in feedback["Participant 102"]
    lines_before = worksheet.read_text(encoding="utf-8").splitlines()
    lines_after = (out / "moodle-grading-worksheet.csv").read_text(encoding="utf-8").splitlines()
    assert lines_after[0] == lines_before[0] and lines_after[-1] == lines_before[-1]  # untouched: byte for byte

    with zipfile.ZipFile(out / "feedback.zip") as archive:
        names = set(archive.namelist())
    assert "Jane Doe_101_assignfeedback_file/feedback.html" in names
    team = {f"Team Rocket_{member}_assignfeedback_file/feedback.html" for member in ("201", "202")}
    assert team <= names
    page = (out / "feedback" / "Bob_Smith_102.html").read_text(encoding="utf-8")
    assert "expected -6, got -3" in page and "2 days late" in page
    carl = json.loads((out / "Carl_Corrupt_104" / "grade.json").read_text(encoding="utf-8"))
    assert "it is empty (0 bytes)" in json.dumps(carl["items"])
    team = json.loads((out / "Team_Rocket_17" / "grade.json").read_text(encoding="utf-8"))
    assert any("graded as trivial.ipynb" in f["message"] for f in team["findings"])
    assert (out / "cohort.html").read_text(encoding="utf-8").count("<img") >= 4


def test_the_worksheet_is_written_back_byte_for_byte_in_each_quoting_style(tmp_path: Path):
    rows = [["Identifier", "Full name", "Grade", "Last modified (submission)", "Feedback comments"],
            ["Participant 1", "Jane Doe", "", "Monday, 4 March 2024, 9:00 AM", ""],
            ["Participant 2", "Ann", "", "-", 'old "quoted", text']]
    styles = {
        "php": "".join(",".join(f'"{v}"' if (" " in v or "," in v) else v for v in row) + "\n" for row in rows[:2]),
    }
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    styles["all"] = buffer.getvalue()
    for style, text in styles.items():
        path = tmp_path / f"{style}.csv"
        path.write_bytes(("\ufeff" + text).encode("utf-8"))
        sheet = Worksheet.read(path)
        assert sheet.style == style and sheet.bom
        assert sheet.write(tmp_path / f"{style}-out.csv").read_bytes() == path.read_bytes()
        assert sheet.fill("1", "7.50", "<p>Well done</p>") and not sheet.fill("99", "1", "x")
        written = _csv_rows(sheet.write(tmp_path / f"{style}-filled.csv"))
        assert written[1][2] == "7.50" and written[1][4] == "<p>Well done</p>"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Name,Points\nJane,3\n", "not a Moodle grading worksheet: no 'Identifier', 'Grade', 'Feedback comments'"),
        (b"\xff\xfeI\x00d\x00", "not UTF-8 text"),
        (b"", "the grading worksheet is empty"),
        (b"Identifier,Grade,Feedback comments\nParticipant 1,3\n", "line(s) 2 do not have 3 columns"),
    ],
)
def test_a_bad_worksheet_is_refused_naming_the_file(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "grades.csv"
    path.write_bytes(content)
    with pytest.raises(UsageError) as error:
        Worksheet.read(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_worksheet_in_another_language_is_read_by_moodles_column_order(tmp_path: Path):
    """Moodle writes the headers in the downloading user's language; the columns keep their order."""
    german = ["ID", "Vollständiger Name", "E-Mail-Adresse", "Status", "Bewertung", "Bestwertung",
              "Bewertung kann geändert werden", "Zuletzt geändert (Abgabe)", "Zuletzt geändert (Bewertung)",
              "Feedback als Kommentar"]
    rows = [german,
            ["Teilnehmer/in 101", "Jana Daum", "jana@example.edu", "Zur Bewertung abgegeben", "", "50,00", "Ja",
             "Montag, 16. Oktober 2023, 09:45", "-", ""],
            ["Teilnehmer/in 102", "Bo Schmidt", "bo@example.edu", "Zur Bewertung abgegeben", "40,00", "50,00", "Ja",
             "Montag, 16. Oktober 2023, 10:45", "-", "gut"]]
    path = tmp_path / "bewertungen.csv"
    path.write_text("".join(",".join(f'"{v}"' if " " in v or "," in v else v for v in row) + "\n" for row in rows),
                    encoding="utf-8")
    sheet = Worksheet.read(path)
    assert set(sheet.participants()) == {"101", "102"} and sheet.name("101") == "Jana Daum"
    assert sheet.maximum("101") == 50.0 and not sheet.teams
    assert sheet.fill("101", "45.00", "sehr gut")
    written = _csv_rows(sheet.write(tmp_path / "out.csv"))
    assert written[1][4] == "45.00" and written[1][9] == "sehr gut" and written[2] == rows[2]
    rows[0] = ["A", "B", "C", "D", "E", "F", "G"]  # neither Moodle's names nor its order
    path.write_text("\n".join(",".join(r[:7]) for r in [rows[0], ["x", "y", "z", "w", "v", "u", "t"]]) + "\n",
                    encoding="utf-8")
    with pytest.raises(UsageError, match="not in the order Moodle writes them in another language"):
        Worksheet.read(path)
