"""One root for every error the grader raises.

Each error owns its user-facing message and its exit code. Failures of student code
(`StudentCodeError`) are a different family from failures of the grader itself
(`GraderError`): the first become a graded result with a reason, the second stop the
run and point at the assignment's authors or at this project.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[AutograderError], message: str, state: dict[str, Any]) -> AutograderError:
    """An error as it was, whatever its constructor asks for (see ``__reduce__``)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class AutograderError(Exception):
    """Root of the grader's errors.

    Errors cross the batch's process pool: ``__reduce__`` rebuilds one from its message
    and attributes, not by calling its constructor again (several take more than the
    message, which plain exception pickling would pass as a single argument).
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, dict(self.__dict__))


class UsageError(AutograderError):
    """The command line asked for something that does not exist or cannot be done."""

    exit_code = 2


class RubricError(AutograderError):
    """A rubric is invalid; the message names the file, the item and the field."""

    exit_code = 3

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid rubric {path}:\n{lines}")


class AssignmentError(AutograderError):
    """An assignment's files disagree with each other (checks, rubric, templates)."""

    exit_code = 3


class GraderError(AutograderError):
    """The grader failed; not the student's fault."""

    exit_code = 4


class KernelStartError(GraderError):
    """A kernel did not become ready through no fault of the submission (a loaded machine,
    a sandbox that could not start it): the submission is tried again."""


class SubmissionError(AutograderError):
    """A submission cannot be read at all (not a zip, not a notebook...)."""

    exit_code = 5


class Referred(AutograderError):
    """The grader cannot find what to grade in a submission written against another starter
    (no object fits a name the check reads, or several do): the item goes to a marker with
    the candidates, neither the student's 0 nor the grader's error."""


class StudentCodeError(AutograderError):
    """Student code could not answer a probe; the item fails with this message."""


class NotDefined(StudentCodeError):
    """A name the check needs is not defined in the student's kernel."""

    def __init__(self, name: str, notebook: str, hint: str = "") -> None:
        self.name = name
        self.notebook = notebook
        self.hint = hint
        suffix = f"; {hint}" if hint else ""
        super().__init__(f"`{name}` is not defined in {notebook}{suffix}")


class NotCallable(StudentCodeError):
    """A name the check calls holds something that is not a function."""

    def __init__(self, name: str, type_name: str) -> None:
        super().__init__(f"`{name}` is a {type_name}, not a function")


class StudentRaised(StudentCodeError):
    """Student code raised an exception while the grader called it."""

    def __init__(self, name: str, ename: str, evalue: str, traceback: list[str]) -> None:
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        subject = f"`{name}`" if name.replace(".", "_").isidentifier() else name
        super().__init__(f"{subject} raised {ename}: {evalue}".rstrip(": "))


class ProbeTimeout(StudentCodeError):
    """Student code did not answer within the probe's time limit."""


class KernelDied(StudentCodeError):
    """The student's kernel is not running (it crashed, or was stopped)."""


class NotebookMissing(StudentCodeError):
    """The notebook an item is graded from was not submitted or could not be run."""


class BadReply(StudentCodeError):
    """The kernel answered with something that is not a valid reply."""
