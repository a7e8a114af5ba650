"""The wire format: JSON and numpy arrays only, and malformed data refused."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.grading import wire

DTYPES = st.sampled_from(["bool", "int8", "int32", "int64", "uint8", "uint16", "float16", "float32", "float64"])


@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_arrays_round_trip_exactly(array):
    back = wire.loads(wire.dumps(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array, equal_nan=array.dtype.kind == "f")


@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_a_requests_arrays_travel_as_raw_buffers_and_round_trip_exactly(array):
    reversed_ = array[..., ::-1] if array.ndim else array  # not contiguous: copied
    metadata, buffers = wire.request_message({"op": "call", "args": [array, {"again": reversed_}]})
    text = metadata[wire.REQUEST_KEY]
    assert wire.ARRAY not in text and len(buffers) == 2 and buffers[0] == array.tobytes()
    back = wire.loads(text, [memoryview(b) for b in buffers])  # as zmq hands them to the kernel
    assert back["args"][0].dtype == array.dtype and back["args"][0].shape == array.shape
    assert np.array_equal(back["args"][0], array, equal_nan=array.dtype.kind == "f")
    assert np.array_equal(back["args"][1]["again"], reversed_, equal_nan=array.dtype.kind == "f")


def test_only_a_request_may_name_a_buffer():
    """A reply (decoded without buffers) that names one is malformed, as is a request naming
    one it does not carry or bytes of another size."""
    text = json.dumps({wire.BUFFER: 0, "dtype": "<f8", "shape": [1]})
    with pytest.raises(wire.WireError, match="names a buffer where none travel"):
        wire.loads(text)
    with pytest.raises(wire.WireError, match="no buffer 1"):
        wire.loads(text.replace(": 0", ": 1"), [b"\0" * 8])
    with pytest.raises(wire.WireError, match="has 4 bytes"):
        wire.loads(text, [b"\0" * 4])


def test_values_round_trip():
    value = {"a": [1, 2.5, None, True, "s"], "b": (np.float32(1.5), np.int64(3)), "c": {"d": []}}
    assert wire.loads(wire.dumps(value)) == {"a": [1, 2.5, None, True, "s"], "b": [1.5, 3], "c": {"d": []}}


def test_non_finite_floats_are_tagged_not_bare():
    text = wire.dumps([float("nan"), float("inf"), -math.inf])
    assert "NaN" not in text and "Infinity" not in text
    back = wire.loads(text)
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf


def test_objects_cross_only_as_opaque_type_names():
    class Model:
        pass

    back = wire.loads(wire.dumps({"model": Model(), "strings": np.array(["a"]), 1: 2}))
    assert isinstance(back, wire.Opaque) and "non-string keys" in back.type_name
    back = wire.loads(wire.dumps({"model": Model(), "strings": np.array(["a"])}))
    assert back["model"].type_name.endswith("Model") and "ndarray" in back["strings"].type_name


def test_torch_tensors_become_arrays():
    torch = pytest.importorskip("torch")
    tensor = torch.ones(2, 3, requires_grad=True) * 2
    back = wire.loads(wire.dumps(tensor))
    assert isinstance(back, np.ndarray) and back.shape == (2, 3) and back.sum() == 12


def _tagged(dtype: str, shape: list[int], raw: bytes) -> str:
    return json.dumps({wire.ARRAY: base64.b64encode(raw).decode(), "dtype": dtype, "shape": shape})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_tagged("|O", [1], b"\0" * 8), "not allowed"),
        (_tagged("<f8", [2], b"\0" * 8), "has 8 bytes"),
        (_tagged("<f8", [-1], b""), "negative"),
        (_tagged("<U1", [1], b"\0" * 4), "not allowed"),
        ('{"__float__": "1e5"}', "malformed float"),
        ("[NaN]", "bare NaN"),
        ("{not json", "not JSON"),
    ],
)
def test_malformed_data_is_refused(text, message):
    with pytest.raises(wire.WireError, match=message):
        wire.loads(text)


def test_deep_nesting_is_refused():
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deeply"):
        wire.dumps(deep)
