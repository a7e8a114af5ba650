"""The grading worksheet against PHP itself: files written by PHP's ``fputcsv`` as both
Moodle generations call it (no escape character in Moodle 4.x, ``\\`` before), filled by
the grader, must come out exactly as PHP would write the filled rows, and PHP's
``fgetcsv`` (Moodle's importer) must read back what the grader meant.

PHP is Debian's ``php-cli``; ``.ci/run`` installs it and sets ``AUTOGRADER_REQUIRE_PHP=1``,
so there a missing PHP fails instead of skipping."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder.marking.worksheet import GRADE, WORKSHEET_HEADER, Worksheet

WRITE = r"""
$in = json_decode(file_get_contents($argv[1]), true);
$out = fopen($argv[2], "w");
foreach ($in["rows"] as $row) { fputcsv($out, $row, ",", "\"", $in["escape"]); }
"""
READ = r"""
$in = json_decode(file_get_contents($argv[1]), true);
$handle = fopen($argv[2], "r");
$rows = [];
while (($row = fgetcsv($handle, 0, ",", "\"", $in["escape"])) !== false) { $rows[] = $row; }
echo json_encode($rows);
"""


def php(script: str, *args: str) -> str:
    executable = shutil.which("php")
    if executable is None:
        if os.environ.get("AUTOGRADER_REQUIRE_PHP") == "1":
            pytest.fail("AUTOGRADER_REQUIRE_PHP=1 but there is no php here (Debian: php-cli)")
        pytest.skip("no php here to write worksheets as Moodle does (Debian: php-cli)")
    done = subprocess.run([executable, "-r", script, "--", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def row(participant: str, name: str, feedback: str) -> list[str]:
    return [f"Participant {participant}", name, f"p{participant}@example.edu", "Submitted for grading", "",
            "100.00", "Yes", "Monday, 16 October 2023, 09:45 AM", "", "-", feedback]


ROWS = [
    WORKSHEET_HEADER,
    row("101", "Jane Doe", "first line\r\nsecond line, as a browser submits it"),  # CRLF inside a comment
    row("102", "Zoë\u00a0Ñandú", "a non-breaking space in the name"),
    row("103", "Sam Slash", "C:\\temp\\new"),  # lone backslashes (one ending a field: see below)
    row("104", "Quinn Quote", 'she said \\"fine\\" and "ok"'),  # \" as a student or marker typed it
    row("105", "Tab Tim", "a\ttab"),
    row("106", "To Fill", "old feedback"),
    row("107", "Also Fill", ""),
]


# Moodle 4.x writes a field ending in a backslash unquoted; with the old escape PHP quotes it
# and then cannot read it back (its own reader takes the closing quote as escaped), so only
# the new style's worksheet holds one.
TRAILING = row("108", "Tess Trailing", "D:\\work\\")


@pytest.mark.parametrize(("escape", "style", "rows"), [("", "php", [*ROWS, TRAILING]), ("\\", "php-backslash", ROWS)])
def test_a_worksheet_php_wrote_comes_back_as_php_would_write_it_filled(tmp_path: Path, escape: str, style: str,
                                                                       rows: list[list[str]]):
    source, spec = tmp_path / "worksheet.csv", tmp_path / "rows.json"
    spec.write_text(json.dumps({"rows": rows, "escape": escape}), encoding="utf-8")
    php(WRITE, str(spec), str(source))
    sheet = Worksheet.read(source)
    assert sheet.style == style
    assert sheet.rows == php_rows(source, escape, tmp_path)  # read as Moodle's importer reads it
    assert sheet.rows == rows or escape  # (the old style's reader keeps each backslash and the quote after it)
    assert sheet.write(tmp_path / "same.csv").read_bytes() == source.read_bytes()
    assert sheet.fill("106", "75.00", "Well done, \"really\"\r\nsee the page") and sheet.fill("107", "0.00", "a\\")
    written = sheet.write(tmp_path / "filled.csv")

    expected_rows = [list(r) for r in php_rows(source, escape, tmp_path)]  # the rows as Moodle's importer reads them
    grade, feedback = ROWS[0].index(GRADE), ROWS[0].index("Feedback comments")
    expected_rows[6][grade], expected_rows[6][feedback] = "75.00", "Well done, \"really\"\r\nsee the page"
    expected_rows[7][grade], expected_rows[7][feedback] = "0.00", "a\\"
    spec.write_text(json.dumps({"rows": expected_rows, "escape": escape}), encoding="utf-8")
    php(WRITE, str(spec), str(tmp_path / "php-filled.csv"))
    assert written.read_bytes() == (tmp_path / "php-filled.csv").read_bytes()  # every byte, every row
    if not escape:  # Moodle 4.x reads back exactly what was meant (the old style cannot hold "a\" at a field's end)
        assert php_rows(written, escape, tmp_path) == expected_rows


def php_rows(path: Path, escape: str, tmp_path: Path) -> list[list[str]]:
    spec = tmp_path / "read.json"
    spec.write_text(json.dumps({"escape": escape}), encoding="utf-8")
    return json.loads(php(READ, str(spec), str(path)))
