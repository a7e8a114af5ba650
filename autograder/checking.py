"""What a check author uses besides the fixtures: verdicts and value conversions.

A check fails by raising ``CheckFailed`` (or a plain ``assert``) with a message a student
can act on: what was expected, what the code gave. Values from the kernel are untrusted
data; convert them with ``as_number`` and ``as_array`` before comparing, so that a
string or a model where a number belongs is reported as the student's mistake rather
than crashing the check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .course.rubric import Tolerance
from .grading.wire import Opaque


class CheckFailed(AssertionError):
    """The student's answer is wrong; the message says what was expected and what came."""


def describe_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, Opaque):
        if value.type_name == "builtins.ellipsis":
            return "`...` (the template's placeholder: not answered yet)"
        return f"a {value.type_name}"
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def as_number(value: Any, what: str) -> float:
    """A finite-or-not real number from a scalar, a 0-d or one-element array."""
    if isinstance(value, bool) or value is None:
        raise CheckFailed(f"{what} should be a number, got {describe_value(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return float(value.reshape(()))
    raise CheckFailed(f"{what} should be a number, got {describe_value(value)}")


def as_array(
    value: Any, what: str, *, shape: Sequence[int] | None = None, dtype_kinds: str = "biuf"
) -> np.ndarray:
    """A numeric numpy array (lists of numbers accepted), optionally of a given shape."""
    if isinstance(value, (list, tuple, int, float)) and not isinstance(value, bool):
        try:
            value = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} should be numeric, got {describe_value(value)}") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in dtype_kinds:
        raise CheckFailed(f"{what} should be a numeric array, got {describe_value(value)}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    return value


def expect_close(got: Any, want: float, *, tol: Tolerance, what: str) -> float:
    """Fail unless ``got`` is a number within ``tol`` of ``want``; returns the number."""
    number = as_number(got, what)
    if not tol.allows(number, want):
        raise CheckFailed(f"{what}: expected {want:.6g} ({tol.describe()}), got {number:.6g}")
    return number


def expect_allclose(got: Any, want: np.ndarray, *, tol: Tolerance, what: str) -> np.ndarray:
    """Fail unless ``got`` is an array of ``want``'s shape, elementwise within ``tol``."""
    array = as_array(got, what, shape=np.shape(want))
    want = np.asarray(want, dtype=float)
    ok = np.abs(array - want) <= tol.abs + tol.rel * np.abs(want)
    if not np.all(ok):
        bad = int(np.argmax(~ok.reshape(-1)))
        got_at, want_at = array.reshape(-1)[bad], want.reshape(-1)[bad]
        where = np.unravel_index(bad, want.shape) if want.ndim else ()
        raise CheckFailed(
            f"{what}: {int((~ok).sum())} of {ok.size} values differ ({tol.describe()}); "
            f"first at index {tuple(int(i) for i in where)}: expected {want_at:.6g}, got {float(got_at):.6g}"
        )
    return array


def as_vector(value: Any, what: str, length: int) -> np.ndarray:
    """A 1-D array of ``length`` numbers; column and row vectors are accepted and flattened."""
    array = as_array(value, what)
    if array.size != length or (array.ndim > 1 and sorted(array.shape)[:-1] != [1] * (array.ndim - 1)):
        raise CheckFailed(f"{what} should be a vector of {length} numbers, got shape {tuple(array.shape)}")
    return array.reshape(length).astype(float)


def as_pair(value: Any, what: str) -> tuple[Any, Any]:
    """The two parts of a returned pair such as ``(loss, grad)``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CheckFailed(f"{what} should return a pair, got {describe_value(value)}")
    return value[0], value[1]
