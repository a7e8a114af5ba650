"""The pytest plugin's rules, run with ``pytester`` on a check session holding no kernel:
how checks are collected and matched to the rubric, and which outcome each way a check
ends becomes (milliseconds each; the full gradings test the same plugin end to end)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from autograder.course.assignment import Assignment
from autograder.grading.check import _Carrier, pytest_args
from autograder.grading.outcomes import CheckSession
from autograder.grading.outcomes import TestOutcome as Outcome  # not a test class
from autograder.grading.record import Status
from autograder.grading.score import score

from .conftest import TRIVIAL

#: Passing checks for the toy rubric's items 1 and 3, so that a test writes only the checks of 2a.
OTHERS = '''
import pytest

@pytest.mark.item("1")
def test_one():
    pass

@pytest.mark.item("3")
def test_three(measure):
    measure(0.95)
'''


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the grader runs the checks: no other installed plugin takes part."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def _assignment(folder: Path, checks: str, *, others: str = OTHERS) -> Assignment:
    shutil.copy(TRIVIAL / "rubric.yaml", folder / "rubric.yaml")
    (folder / "checks").mkdir()
    (folder / "checks" / "check_others.py").write_text(textwrap.dedent(others), encoding="utf-8")
    (folder / "checks" / "check_rules.py").write_text(textwrap.dedent(checks), encoding="utf-8")
    return Assignment(folder / "rubric.yaml")


def _run(pytester: pytest.Pytester, checks: str, **session: object) -> tuple[CheckSession, pytest.RunResult]:
    grading = CheckSession(_assignment(pytester.path, checks), submission="s", **session)  # type: ignore[arg-type]
    return grading, _check(pytester, grading)


def _check(pytester: pytest.Pytester, grading: CheckSession) -> pytest.RunResult:
    """The checks run as the grader runs them, handed ``grading``."""
    return pytester.runpytest_inprocess(*pytest_args(grading), plugins=[_Carrier(grading)])


def _of(grading: CheckSession, name: str) -> list[Outcome]:
    return [outcome for outcome in grading.outcomes if outcome.nodeid.endswith(f"::{name}")]


def test_each_way_a_check_ends_becomes_its_outcome(pytester: pytest.Pytester):
    grading, result = _run(pytester, '''
        import pytest
        from autograder.errors import NotDefined, StudentRaised
        from autograder.checking import CheckFailed

        @pytest.mark.item("2a")
        def test_passes():
            pass

        @pytest.mark.item("2a")
        def test_assertion():
            assert 1 == 2, "double(x): expected 2, got 1"

        @pytest.mark.item("2a")
        def test_check_failed():
            raise CheckFailed("double(x) returned a list of the wrong length")

        @pytest.mark.item("2a")
        def test_not_defined():
            raise NotDefined("double", "trivial.ipynb")

        @pytest.mark.item("2a")
        def test_student_raised():
            raise StudentRaised("double", "ValueError", "bad input", ["Traceback", "ValueError: bad input"])

        @pytest.mark.item("2a")
        def test_grader_bug():
            {}["missing"]

        @pytest.mark.item("2a")
        def test_skipped():
            pytest.skip("no GPU here")  # the case under test: a skipped check is an error, never points
    ''')
    assert grading.problems == []
    assert grading.selected_items == {"1", "2a", "3"}
    expected = {
        "test_passes": (Status.PASSED, ""),
        "test_assertion": (Status.FAILED, "double(x): expected 2, got 1"),
        "test_check_failed": (Status.FAILED, "double(x) returned a list of the wrong length"),
        "test_not_defined": (Status.FAILED, "`double` is not defined in trivial.ipynb"),
        "test_student_raised": (Status.FAILED, "`double` raised ValueError: bad input"),
        "test_grader_bug": (Status.ERROR, "grader error: KeyError: 'missing'"),
        "test_skipped": (Status.ERROR, "the check was skipped (no GPU here); a skipped check earns nothing"),
    }
    for name, (status, reason) in expected.items():
        [outcome] = _of(grading, name)
        assert (outcome.item_id, outcome.status) == ("2a", status), name
        assert outcome.reason.startswith(reason) if reason else outcome.reason == "", (name, outcome.reason)
    assert _of(grading, "test_student_raised")[0].detail == ["Traceback", "ValueError: bad input"]
    assert any("KeyError" in line for line in _of(grading, "test_grader_bug")[0].detail)  # the traceback, for us
    assert [o.status for o in _of(grading, "test_one") + _of(grading, "test_three")] == [Status.PASSED] * 2
    assert grading.measurements["3"][0].value == 0.95
    result.assert_outcomes(passed=3, failed=5, skipped=1)
    grade = score(grading)  # a check that raised: the item's points wait for a marker, never a silent 0
    [errored] = [item for item in grade.items if item.id == "2a"]
    assert (errored.status, errored.points) == (Status.ERROR, None)
    assert errored in grade.awaiting and grade.awaiting_marker >= errored.max_points
    assert grade.auto_max == grade.total_max - grade.awaiting_marker
    [marked] = [item for item in grade.with_marks({"2a": 2.0}).items if item.id == "2a"]
    assert (marked.status, marked.points) == (Status.MARKED, 2.0)


def test_a_fixture_that_fails_is_the_checks_outcome_and_a_teardown_that_fails_is_an_error(pytester):
    grading, _ = _run(pytester, '''
        import pytest
        from autograder.errors import NotDefined

        @pytest.fixture
        def features():
            raise NotDefined("features", "trivial.ipynb", "no cell of the notebook defines it")

        @pytest.fixture
        def broken():
            raise RuntimeError("the grader's own fixture broke")

        @pytest.fixture
        def leaves_a_mess():
            yield
            raise OSError("could not remove the scratch folder")

        @pytest.mark.item("2a")
        def test_needs_features(features):
            pass

        @pytest.mark.item("2a")
        def test_needs_broken(broken):
            pass

        @pytest.mark.item("2a")
        def test_teardown(leaves_a_mess):
            pass
    ''')
    [needs_features] = _of(grading, "test_needs_features")
    assert needs_features.status is Status.FAILED
    assert needs_features.reason == "`features` is not defined in trivial.ipynb; no cell of the notebook defines it"
    [needs_broken] = _of(grading, "test_needs_broken")
    assert needs_broken.status is Status.ERROR and "RuntimeError" in needs_broken.reason
    passed, teardown = _of(grading, "test_teardown")
    assert passed.status is Status.PASSED
    assert teardown.status is Status.ERROR and "OSError: could not remove the scratch folder" in teardown.reason


def test_the_fixtures_hand_a_check_the_rubrics_values_and_name_a_missing_notebook(pytester):
    grading, _ = _run(pytester, '''
        import pytest

        @pytest.mark.item("2a")
        def test_values(given, tolerance, rubric_item, assignment, parameters):
            assert given == {}
            assert (tolerance.abs, rubric_item.id, assignment.id) == (1e-9, "2a", "trivial")
            assert parameters == {"SCALE": 2}

        @pytest.mark.item("2a")
        def test_kernel(nb):
            pass

        @pytest.mark.item("2a")
        def test_data(data):
            pass
    ''', parameters={"SCALE": 2}, unavailable={"trivial.ipynb": "trivial.ipynb stopped at cell 2"})
    assert _of(grading, "test_values")[0].status is Status.PASSED
    [kernel] = _of(grading, "test_kernel")
    assert (kernel.status, kernel.reason) == (Status.FAILED, "trivial.ipynb stopped at cell 2")
    [data] = _of(grading, "test_data")  # the rubric lists no datasets: the assignment is at fault
    assert data.status is Status.ERROR and "a check asks for data but the rubric lists no datasets" in data.reason


@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        ("def test_unmarked():\n    pass\n", "test_unmarked: needs exactly one @pytest.mark.item('<id>')"),
        ('@pytest.mark.item("2a")\n@pytest.mark.item("1")\ndef test_twice():\n    pass\n',
         "test_twice: needs exactly one @pytest.mark.item('<id>')"),
        ('@pytest.mark.item("9z")\ndef test_unknown():\n    pass\n', "test_unknown: item '9z' is not in the rubric"),
        ('@pytest.mark.item("2b")\ndef test_manual():\n    pass\n',
         "test_manual: '2b' is not an automatic item of a ready question"),
        ("", "item '2a' is automatic but no check is marked for it"),
    ],
    ids=["unmarked", "marked-twice", "unknown-item", "manual-item", "unchecked-item"],
)
def test_checks_that_disagree_with_the_rubric_grade_nothing(pytester, checks, problem):
    fine = '\n@pytest.mark.item("2a")\ndef test_fine():\n    pass\n' if checks else ""  # "": 2a has none
    source = "import pytest\n\n" + checks + fine
    grading, result = _run(pytester, source)
    assert any(found.endswith(problem) for found in grading.problems), grading.problems
    assert grading.selected_items == set() and grading.outcomes == []  # nothing rather than something wrong
    result.assert_outcomes()


def test_a_public_run_needs_no_hidden_checks_and_runs_none(pytester):
    others = OTHERS.replace('@pytest.mark.item("1")\ndef test_one():\n    pass\n', "")  # item 1 is hidden
    grading = CheckSession(_assignment(pytester.path, '''
        import pytest

        @pytest.mark.item("2a")
        def test_public():
            pass
    ''', others=others), public_only=True)
    _check(pytester, grading)
    assert grading.problems == []
    assert grading.selected_items == {"2a", "3"}

    full = CheckSession(Assignment(pytester.path / "rubric.yaml"))
    _check(pytester, full)
    assert full.problems == ["item '1' is automatic but no check is marked for it"]


def test_a_run_of_some_notebooks_selects_only_their_items(pytester):
    grading, result = _run(pytester, '''
        import pytest

        @pytest.mark.item("2a")
        def test_double():
            pass
    ''', only_notebooks={"another.ipynb"})
    assert grading.problems == [] and grading.selected_items == set()
    result.assert_outcomes(deselected=3)


def test_without_a_grading_session_the_plugin_is_inert(pytester):
    """In any other pytest run, check files are not collected and the fixtures refuse."""
    _assignment(pytester.path, '''
        import pytest

        @pytest.mark.item("2a")
        def test_double():
            pass
    ''')
    (pytester.path / "test_other.py").write_text(textwrap.dedent('''
        def test_uses_a_kernel(nb):
            pass
    '''), encoding="utf-8")
    result = pytester.runpytest_inprocess("-p", "autograder.grading.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)  # test_other's fixture; the checks folder was not collected
    result.stdout.fnmatch_lines(["*this check runs only under the autograder (use --ag-submission)*"])
    assert "check_rules" not in result.stdout.str()
