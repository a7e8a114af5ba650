"""The comparison helpers every check uses: the forms a marker accepts keep their points,
wrong types and wrong values get a reason a student can act on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checking import (
    CheckFailed,
    as_array,
    as_dict,
    as_dims,
    as_list,
    as_number,
    as_vector,
    expect_allclose,
    expect_close,
    same_dims,
)
from autograder.course.rubric import Tolerance
from autograder.grading import wire

TOL = Tolerance(abs=1e-6, rel=1e-6)


def over_the_wire(value):
    """A value as a check receives it from the kernel."""
    return wire.loads(wire.dumps(value))


@pytest.mark.parametrize("value", [
    0.5, np.float32(0.5), np.array(0.5), np.array([0.5]), np.array([[0.5]]), [0.5], (0.5,), [[0.5]],
    torch.tensor(0.5), torch.tensor([0.5]), torch.tensor(0.5, requires_grad=True) * 1, torch.tensor([[0.5]]).half(),
])
def test_a_number_in_any_one_element_form_is_the_number(value):
    assert expect_close(over_the_wire(value), 0.5, tol=TOL, what="x") == 0.5


@pytest.mark.parametrize(("value", "said"), [
    (None, "x should be numbers, got None"),
    ("0.73", "x should be numbers, got the text '0.73'"),
    ({"a": 1}, "x should be numbers, got a dict with the keys a"),
    ([1.0, 2.0], "x should be one number, got a list of length 2"),
    ([[1.0, 2.0], [3.0]], "whose rows differ in length"),
    (True, "x should be a number, got the bool True"),
    (torch.nn.Linear(1, 1), "x should be numbers, got a torch.nn.modules.linear.Linear"),
    (..., "`...` (the template's placeholder: not answered yet)"),
    (["1", "2"], "holding text"),
])
def test_a_wrong_type_for_a_number_is_named(value, said):
    with pytest.raises(CheckFailed) as caught:
        as_number(over_the_wire(value), "x")
    assert said in str(caught.value)


def test_a_wrong_number_says_what_was_expected():
    with pytest.raises(CheckFailed, match=r"x: expected 0.5 \(±1e-06 and ±1e-06 relative\), got 0.6"):
        expect_close(0.6, 0.5, tol=TOL, what="x")


@pytest.mark.parametrize("value", [
    np.arange(4.0), np.arange(4.0).reshape(4, 1), np.arange(4.0).reshape(1, 4), [0, 1, 2, 3], (0.0, 1.0, 2.0, 3.0),
    [[0.0], [1.0], [2.0], [3.0]], np.arange(4, dtype=np.float32), torch.arange(4.0, requires_grad=True) * 1,
])
def test_a_vector_as_a_column_a_row_or_a_list_is_the_vector(value):
    np.testing.assert_array_equal(as_vector(over_the_wire(value), "w", 4), np.arange(4.0))
    np.testing.assert_array_equal(expect_allclose(over_the_wire(value), np.arange(4.0), tol=TOL, what="w"),
                                  np.arange(4.0))


@pytest.mark.parametrize(("value", "said"), [
    (np.arange(6.0).reshape(2, 3), "w should be a vector of 4 numbers, got an array of shape (2, 3)"),
    (np.arange(5.0), "got an array of shape (5,)"),
    (np.array(7.0), "got a 0-d array (float64) holding 7.0"),
    (None, "w should be numbers, got None"),
])
def test_a_vector_of_the_wrong_shape_or_type_is_named(value, said):
    with pytest.raises(CheckFailed) as caught:
        as_vector(over_the_wire(value), "w", 4)
    assert said in str(caught.value)


def test_a_matrix_keeps_its_orientation_unless_the_check_frees_it():
    want = np.arange(6.0).reshape(2, 3)
    with pytest.raises(CheckFailed, match=r"should have shape \(2, 3\), got an array of shape \(3, 2\)"):
        expect_allclose(want.T, want, tol=TOL, what="m")
    np.testing.assert_array_equal(expect_allclose(want.T, want, tol=TOL, what="m", transposed=True), want)
    np.testing.assert_array_equal(as_array(want[None], "m", shape=(2, 3)), want)  # a batch of one


def test_wrong_values_say_where_they_first_differ():
    with pytest.raises(CheckFailed, match=r"1 of 4 values differ .*first at index \(2,\): expected 2, got 5"):
        expect_allclose([0, 1, 5, 3], np.arange(4.0), tol=TOL, what="w")


@pytest.mark.parametrize(("value", "dims"), [
    (4096, (4096,)), ((4096,), (4096,)), ([7, 7, 512], (7, 7, 512)), (np.array([7, 7, 512]), (7, 7, 512)),
    ((7.0, 7.0, 512.0), (7, 7, 512)), (torch.Size([1, 4096]), (1, 4096)),
])
def test_dimensions_are_whole_numbers_and_an_int_is_a_1_tuple(value, dims):
    assert as_dims(over_the_wire(value), "size") == dims


@pytest.mark.parametrize("value", ["7x7x512", None, (7.5, 7), [[7, 7], [512, 1]], {"h": 7}])
def test_dimensions_of_another_kind_are_named(value):
    with pytest.raises(CheckFailed, match="size should"):
        as_dims(over_the_wire(value), "size")


def test_dimensions_match_up_to_singletons_and_channels_first_where_allowed():
    assert same_dims((4096,), (1, 1, 4096)) and same_dims((1, 1, 4096), (4096,))
    assert not same_dims((512, 7, 7), (7, 7, 512))
    assert same_dims((512, 7, 7), (7, 7, 512), channels_first=True)
    assert not same_dims((7, 512, 7), (7, 7, 512), channels_first=True)
    assert not same_dims((4096,), (1000,), channels_first=True)


def test_lists_and_dicts_are_checked_for_what_they_hold():
    assert as_list((1, 2), "rows", 2) == [1, 2]
    with pytest.raises(CheckFailed, match="rows should be a list of 3 entries, got a tuple of length 2"):
        as_list((1, 2), "rows", 3)
    assert as_dict({"W1": 1, "b1": 2}, "grads", ["W1"]) == {"W1": 1, "b1": 2}
    with pytest.raises(CheckFailed, match="grads should be a dict with the keys W1, b1, got None"):
        as_dict(None, "grads", ["W1", "b1"])
