"""The grader's errors cross process boundaries (the batch's pool) intact."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import autograder
from autograder import errors
from autograder.errors import AutograderError, NotDefined, RubricError, StudentRaised

#: Constructor arguments for the errors whose constructors take more than a message.
SAMPLES: dict[type[AutograderError], tuple[Any, ...]] = {
    RubricError: ("rubrics/x/rubric.yaml", ["items.q1.points: must be positive", "notebooks: empty"]),
    NotDefined: ("features", "Q2.ipynb", "it is defined in code cell 3, which failed with KeyError"),
    errors.NotCallable: ("predict", "int"),
    StudentRaised: ("predict", "ValueError", "shapes (3,) and (4,) not aligned", ["line 1", "line 2"]),
}


def _every_error() -> list[type[AutograderError]]:
    for module in pkgutil.walk_packages(autograder.__path__, "autograder."):
        if not module.name.endswith("__main__"):  # the command line itself, which runs when imported
            importlib.import_module(module.name)
    found, todo = [], [AutograderError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda cls: cls.__qualname__)


def _sample(cls: type[AutograderError]) -> AutograderError:
    arguments = SAMPLES.get(cls)
    if arguments is None:
        required = [p for p in inspect.signature(cls).parameters.values() if p.default is inspect.Parameter.empty]
        assert len(required) == 1, f"{cls.__qualname__} takes {len(required)} arguments: add it to SAMPLES"
        arguments = (f"a {cls.__qualname__} message",)
    return cls(*arguments)


def _same(a: AutograderError, b: AutograderError) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b) and a.message == b.message and a.args == b.args
    assert vars(a) == vars(b)
    assert a.exit_code == b.exit_code


@pytest.mark.parametrize("cls", _every_error(), ids=lambda cls: cls.__qualname__)
def test_every_error_survives_pickling(cls: type[AutograderError]) -> None:
    error = _sample(cls)
    _same(pickle.loads(pickle.dumps(error)), error)


def _raise(error: AutograderError) -> None:
    raise error


def test_an_error_with_many_arguments_crosses_a_process_pool_with_its_attributes() -> None:
    error = _sample(StudentRaised)
    with ProcessPoolExecutor(max_workers=1) as pool, pytest.raises(StudentRaised) as caught:
        pool.submit(_raise, error).result()
    _same(caught.value, error)
    assert caught.value.traceback == ["line 1", "line 2"] and caught.value.ename == "ValueError"


def test_the_sample_table_names_only_errors_that_need_it() -> None:
    """A sample for an error with a one-argument constructor would hide a new error's test."""
    for cls in SAMPLES:
        required = [p for p in inspect.signature(cls).parameters.values() if p.default is inspect.Parameter.empty]
        assert len(required) > 1, cls
