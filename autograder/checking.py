"""What a check author uses besides the fixtures: verdicts and value conversions.

A check fails by raising ``CheckFailed`` (or a plain ``assert``) with a message a student
can act on: what was expected, what the code gave. Values from the kernel are untrusted
data; convert them with the helpers below before comparing, so that a string or a model
where a number belongs is reported as the student's mistake rather than crashing the
check, and so that every check accepts the same forms a marker would:

- any array-like of numbers: lists, tuples, nested lists, numpy arrays and scalars, torch
  tensors (they cross the wire as arrays, with or without ``grad_fn``), bool, int or
  float of any width (float32 throughout is fine);
- singleton dimensions where the grader has none, or none where it has them: a column
  vector ``(n, 1)``, a row ``(1, n)``, a one-element array or list for a number, an int
  for a 1-tuple (``(4096)``, the missing comma);
- a transpose only where the caller says the orientation is free (``transposed=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .course.rubric import Tolerance
from .grading.names import pure_definition
from .grading.record import CellStatus
from .grading.wire import Opaque

if TYPE_CHECKING:
    from .grading.channel import KernelChannel
    from .grading.execute import CellRun


class CheckFailed(AssertionError):
    """The student's answer is wrong; the message says what was expected and what came."""


def describe_value(value: Any) -> str:
    """What a value is, in words a student recognises: 'None', 'the text '0.73'', 'a dict
    with the keys a, b', 'an array of shape (3, 1) (float32)'."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return f"a 0-d array ({value.dtype}) holding {value.item()!r}"
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, Opaque):
        if value.type_name == "builtins.ellipsis":
            return "`...` (the template's placeholder: not answered yet)"
        return f"a {value.type_name}"
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {text!r}"
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:5])) + (", ..." if len(value) > 5 else "")
        return f"a dict with the keys {keys}" if value else "an empty dict"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    if isinstance(value, int):
        return f"the int {value}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def _numeric(value: Any, what: str, *, kinds: str = "biuf") -> np.ndarray:
    """Any array-like of numbers as a numpy array; anything else is the student's mistake."""
    if isinstance(value, np.ndarray):
        array = value
    elif value is None or isinstance(value, (str, bytes, dict, Opaque)):
        raise CheckFailed(f"{what} should be numbers, got {describe_value(value)}")
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):  # ragged nested lists
            raise CheckFailed(f"{what} should be numbers in a regular array, got {describe_value(value)} "
                              "whose rows differ in length") from None
    if array.dtype.kind not in kinds:
        inner = "text" if array.dtype.kind in "US" else "values that are not numbers"
        raise CheckFailed(f"{what} should be numbers, got {describe_value(value)} holding {inner}")
    return array


def _core(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(s) for s in shape if s != 1)


def fit_shape(array: np.ndarray, shape: Sequence[int], what: str, *, transposed: bool = False) -> np.ndarray:
    """``array`` reshaped to ``shape`` when it differs only by singleton dimensions (a
    column or row vector, a one-element array); with ``transposed``, a 2-D array the
    other way round is accepted too. Otherwise a reason naming both shapes."""
    shape = tuple(int(s) for s in shape)
    if array.shape == shape:
        return array
    if array.size == int(np.prod(shape)) and _core(array.shape) == _core(shape):
        return array.reshape(shape)
    if transposed and array.ndim == 2 and array.shape[::-1] == shape:
        return array.T
    raise CheckFailed(f"{what} should have shape {shape}, got {describe_value(array)}")


def as_number(value: Any, what: str) -> float:
    """A real number from a Python or numpy scalar, or any one-element array-like (a
    0-d or one-element tensor, ``[0.5]``, ``np.array([[0.5]])``)."""
    if isinstance(value, (bool, np.bool_)):
        raise CheckFailed(f"{what} should be a number, got {describe_value(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    array = _numeric(value, what, kinds="iuf")
    if array.size != 1:
        raise CheckFailed(f"{what} should be one number, got {describe_value(value)}")
    return float(array.reshape(()))


def as_array(
    value: Any, what: str, *, shape: Sequence[int] | None = None, dtype_kinds: str = "biuf",
    transposed: bool = False,
) -> np.ndarray:
    """A numeric numpy array (any array-like accepted), optionally fitted to ``shape``
    (see ``fit_shape``)."""
    array = _numeric(value, what, kinds=dtype_kinds)
    if shape is not None:
        array = fit_shape(array, shape, what, transposed=transposed)
    return array


def as_vector(value: Any, what: str, length: int) -> np.ndarray:
    """A 1-D float array of ``length`` numbers; column and row vectors are accepted."""
    array = _numeric(value, what)
    if array.size != length or len(_core(array.shape)) > 1:
        raise CheckFailed(f"{what} should be a vector of {length} numbers, got {describe_value(value)}")
    return array.reshape(length).astype(float)


def as_dims(value: Any, what: str) -> tuple[int, ...]:
    """A shape or size written as a tuple or list of whole numbers (or an array of them);
    a lone int is the 1-tuple it was meant to be (``(4096)`` for ``(4096,)``)."""
    array = _numeric(value, what, kinds="iuf")
    flat = array.reshape(-1).astype(float)
    if array.ndim > 1 or not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        raise CheckFailed(f"{what} should be whole numbers such as (4096,) or (7, 7, 512), got "
                          f"{describe_value(value)}")
    return tuple(int(v) for v in flat)


def same_dims(got: Sequence[int], want: Sequence[int], *, channels_first: bool = False) -> bool:
    """Whether two shapes are the same up to singleton dimensions (1×1×4096 is 4096); with
    ``channels_first``, C×H×W also matches the H×W×C of ``want``."""
    if _core(got) == _core(want):
        return True
    return channels_first and len(want) == 3 and tuple(got) == (want[2], want[0], want[1])


def expect_close(got: Any, want: float, *, tol: Tolerance, what: str) -> float:
    """Fail unless ``got`` is a number within ``tol`` of ``want``; returns the number."""
    number = as_number(got, what)
    if not tol.allows(number, want):
        raise CheckFailed(f"{what}: expected {want:.6g} ({tol.describe()}), got {number:.6g}")
    return number


def expect_allclose(got: Any, want: Any, *, tol: Tolerance, what: str, transposed: bool = False) -> np.ndarray:
    """Fail unless ``got`` is an array of ``want``'s shape (up to singleton dimensions),
    elementwise within ``tol``; returns it in ``want``'s shape."""
    want = np.asarray(want, dtype=float)
    array = as_array(got, what, shape=want.shape, transposed=transposed).astype(float)
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


def as_pair(value: Any, what: str) -> tuple[Any, Any]:
    """The two parts of a returned pair such as ``(loss, grad)``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CheckFailed(f"{what} should return a pair, got {describe_value(value)}")
    return value[0], value[1]


def as_list(value: Any, what: str, length: int | None = None) -> list[Any]:
    """A list or tuple (of ``length`` entries, if given)."""
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        wanted = f"a list of {length} entries" if length is not None else "a list"
        raise CheckFailed(f"{what} should be {wanted}, got {describe_value(value)}")
    return list(value)


def as_dict(value: Any, what: str, keys: Sequence[str]) -> dict[str, Any]:
    """A dict holding (at least) ``keys``."""
    if not isinstance(value, dict) or not set(keys) <= set(value):
        listed = ", ".join(keys)
        raise CheckFailed(f"{what} should be a dict with the keys {listed}, got {describe_value(value)}")
    return value


def version_for(nb: KernelChannel, function: str, partner: str) -> tuple[CellRun | None, str]:
    """Which definition of ``function`` goes with ``partner``, a value computed with it
    (``features`` with the weights ``w_best`` fitted on them), and a note for the student.

    When no cell redefines ``function`` after the last cell that sets ``partner``, the
    final one does: ``(None, "")``. When one does (an exploration cell after the answer),
    the pair that is consistent is the definition in force when ``partner`` was set: that
    cell is returned (call it with ``nb.call_as_defined``) when it only defines things;
    otherwise ``None``, and the note says what was redefined where.
    """
    definitions = nb.run.defining(function)
    settings = nb.run.defining(partner)
    if not definitions or not settings:
        return None, ""
    set_in = settings[-1].number
    later = [cell for cell in definitions if cell.number > set_in]
    earlier = [cell for cell in definitions if cell.number <= set_in]
    if not later or not earlier:  # defined once, or only after: nothing was redefined
        return None, ""
    note = (f"`{function}` is redefined in {later[-1].label}, after `{partner}` was set in "
            f"{settings[-1].label}")
    if earlier[-1].status is CellStatus.OK and pure_definition(earlier[-1].source):
        used = f"graded with the `{function}` of {earlier[-1].label}, which `{partner}` was computed with"
        return earlier[-1], f"{note}: {used}"
    return None, note
