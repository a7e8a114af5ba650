"""The wire format between the grader and a student's kernel, and the kernel-side handler.

Only JSON crosses the trust boundary. Numpy arrays travel inside JSON as base64 with
their dtype and shape; non-finite floats and values that cannot be encoded are tagged.
Nothing is ever pickled. A request (grader to kernel) travels in the metadata of a
one-line execute request, its arrays as the message's raw buffers (``request_message``):
IPython never parses it as code, and a batch of images costs a copy, not base64 text
that IPython's input transformers scan line by line (a third of a second per megabyte).
Replies leave as display messages of JSON, and a reply that names a buffer is malformed.

This module has two lives. The grader imports it to encode requests and decode replies.
Its source text is also executed inside the student's kernel (see ``install_source``),
where ``serve`` answers one request: call a student function, read a variable, or run a
grader-supplied probe. It therefore depends only on the standard library and numpy,
and reaches torch or TensorFlow only through values the student's code has already made.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import traceback
from typing import Any, cast

import numpy as np

#: MIME type of the display message that carries a reply out of the kernel.
REPLY_MIME = "application/vnd.autograder.reply+json"
#: Name of the module the handler is installed as, inside the kernel.
KERNEL_MODULE = "_autograder_wire"
#: Code-object filename for the handler's frames, so tracebacks can leave them out.
KERNEL_FILENAME = "<autograder-wire>"
#: Code-object filename of grader-written probes.
PROBE_FILENAME = "<grader probe>"

ARRAY = "__ndarray__"
BUFFER = "__buffer__"  # an array whose bytes are the request message's buffer of this index
#: The key of an execute request's metadata that carries the grader's request.
REQUEST_KEY = "autograder_request"
FLOAT = "__float__"
OPAQUE = "__opaque__"
_ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats: no objects, no strings
_MAX_DEPTH = 32
_MAX_ARRAY_BYTES = 1 << 30
_TRACEBACK_LINES = 12


class WireError(ValueError):
    """A value could not be encoded or decoded."""


class Opaque:
    """A value the kernel holds but that cannot cross the boundary (a model, a file...)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(self.type_name)


def _torch_tensor_to_numpy(obj: Any) -> np.ndarray | None:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.Tensor):
        return None
    tensor = obj.detach().cpu()
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    return cast(np.ndarray, tensor.numpy())


_TENSORFLOW_MODULES = ("tensorflow", "keras", "tf_keras")
_WIDENED_DTYPES = ("bfloat16", "float8")  # ml_dtypes' floats (numpy kind V): widened to float32


def _tensorflow_tensor_to_numpy(obj: Any) -> np.ndarray | None:
    """A TensorFlow or Keras tensor or variable (EagerTensor, tf.Variable, keras.Variable) as an
    array: an object of a class from those packages, or derived from one, with ``.numpy()``.
    Found by the modules of its classes, never by importing TensorFlow (the kernel has it
    only when the student's code imported it); ``None`` for anything else, and for a tensor
    that has no value (a symbolic one: its ``.numpy()`` raises)."""
    classes = type(obj).__mro__
    if not any(str(kind.__module__).partition(".")[0] in _TENSORFLOW_MODULES for kind in classes):
        return None
    if not any(name in sys.modules for name in _TENSORFLOW_MODULES):
        return None
    try:
        method = getattr(obj, "numpy", None)
        if not callable(method):
            return None
        array = np.asarray(method())  # a scalar tensor gives a numpy scalar: a 0-d array here
    except Exception:  # not a tensor with a value after all (a symbolic one): it crosses as opaque
        return None
    if array.dtype.name.startswith(_WIDENED_DTYPES):
        array = array.astype(np.float32)
    return array


def encode(obj: Any, _depth: int = 0, buffers: list[bytes] | None = None) -> Any:
    """Turn ``obj`` into plain JSON data (arrays tagged, unknown objects made opaque); with
    ``buffers``, arrays' bytes are appended there instead of written as base64."""
    if _depth > _MAX_DEPTH:
        raise WireError("value is nested too deeply")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {FLOAT: repr(obj)}
    if isinstance(obj, np.generic):
        return encode(obj.item(), _depth + 1, buffers)
    as_numpy = _torch_tensor_to_numpy(obj)
    if as_numpy is None and not isinstance(obj, np.ndarray):
        as_numpy = _tensorflow_tensor_to_numpy(obj)
    if as_numpy is not None:
        obj = as_numpy
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ARRAY_KINDS:
            return {OPAQUE: f"numpy.ndarray[{obj.dtype}]"}
        data = obj if obj.flags.c_contiguous else np.array(obj, order="C")  # keeps 0-d arrays 0-d
        if buffers is not None:
            buffers.append(data.tobytes())
            return {BUFFER: len(buffers) - 1, "dtype": data.dtype.str, "shape": list(data.shape)}
        return {
            ARRAY: base64.b64encode(data.tobytes()).decode("ascii"),
            "dtype": data.dtype.str,
            "shape": list(data.shape),
        }
    if isinstance(obj, (list, tuple)):
        return [encode(item, _depth + 1, buffers) for item in obj]
    if isinstance(obj, dict):
        if not all(isinstance(key, str) for key in obj):
            return {OPAQUE: "dict with non-string keys"}
        return {key: encode(value, _depth + 1, buffers) for key, value in obj.items()}
    kind = type(obj)
    return {OPAQUE: f"{kind.__module__}.{kind.__qualname__}"}


def _decode_array(tagged: dict[str, Any], buffers: list[Any] | None) -> np.ndarray:
    try:
        dtype = np.dtype(tagged["dtype"])
        shape = tuple(int(n) for n in tagged["shape"])
        if BUFFER in tagged:
            if buffers is None:
                raise ValueError("it names a buffer where none travel")
            index = tagged[BUFFER]
            if not isinstance(index, int) or not 0 <= index < len(buffers):
                raise ValueError(f"no buffer {index!r}")
            raw: bytes | memoryview = memoryview(buffers[index]).cast("B")
        else:
            raw = base64.b64decode(tagged[ARRAY], validate=True)
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"malformed array: {error}") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
        raise WireError(f"array dtype {dtype} is not allowed")
    if any(n < 0 for n in shape):
        raise WireError(f"array shape {shape} is negative")
    expected = math.prod(shape) * dtype.itemsize
    if expected > _MAX_ARRAY_BYTES or len(raw) != expected:
        raise WireError(f"array of shape {shape} and dtype {dtype} has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(data: Any, _depth: int = 0, buffers: list[Any] | None = None) -> Any:
    """Inverse of :func:`encode`; arrays come back as numpy arrays, opaque values as ``Opaque``.
    Only with ``buffers`` (a request's, inside the kernel) may an array name a buffer."""
    if _depth > _MAX_DEPTH:
        raise WireError("value is nested too deeply")
    if isinstance(data, list):
        return [decode(item, _depth + 1, buffers) for item in data]
    if isinstance(data, dict):
        if ARRAY in data or BUFFER in data:
            return _decode_array(data, buffers)
        if FLOAT in data:
            text = data[FLOAT]
            if text not in ("nan", "inf", "-inf"):
                raise WireError(f"malformed float {text!r}")
            return float(text)
        if OPAQUE in data:
            return Opaque(str(data[OPAQUE]))
        return {str(key): decode(value, _depth + 1, buffers) for key, value in data.items()}
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    raise WireError(f"unexpected JSON value of type {type(data).__name__}")


def _reject_constant(name: str) -> Any:
    raise WireError(f"bare {name} is not valid JSON here")


def dumps(obj: Any) -> str:
    """Encode ``obj`` as a JSON string."""
    return json.dumps(encode(obj), allow_nan=False)


def loads(text: str, buffers: list[Any] | None = None) -> Any:
    """Decode a JSON string made by :func:`dumps` (or by ``request_message``, with its buffers)."""
    try:
        return decode(json.loads(text, parse_constant=_reject_constant), buffers=buffers)
    except json.JSONDecodeError as error:
        raise WireError(f"not JSON: {error}") from None


# --------------------------------------------------------------------------- kernel side


class _Failure(Exception):
    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info.get("kind"))
        self.info = info


def _user_namespace() -> dict[str, Any]:
    from IPython import get_ipython  # only inside the kernel

    shell = get_ipython()
    if shell is None:
        raise _Failure({"kind": "internal", "message": "no IPython shell"})
    return cast(dict[str, Any], shell.user_ns)


def _bound(namespace: dict[str, Any], bind: dict[str, str], name: str) -> Any:
    """What the grader bound ``name`` to (the student's object for a template's name)."""
    try:
        return eval(compile(bind[name], PROBE_FILENAME, "eval"), dict(namespace))
    except Exception:
        raise _Failure({"kind": "undefined", "name": name}) from None


def _resolve(namespace: dict[str, Any], dotted: str, bind: dict[str, str] | None = None) -> Any:
    head, *rest = dotted.split(".")
    if bind and head in bind:  # the grader's binding wins: the notebook's own name may hold something else
        value = _bound(namespace, bind, head)
    elif head in namespace:
        value = namespace[head]
    else:
        raise _Failure({"kind": "undefined", "name": dotted})
    for part in rest:
        try:
            value = getattr(value, part)
        except AttributeError:
            raise _Failure({"kind": "undefined", "name": dotted}) from None
    return value


def _student_traceback(error: BaseException) -> list[str]:
    frames = traceback.extract_tb(error.__traceback__)
    kept = traceback.StackSummary.from_list(
        [frame for frame in frames if frame.filename != KERNEL_FILENAME]
    )
    lines = kept.format() + traceback.format_exception_only(type(error), error)
    text = "".join(lines).rstrip().splitlines()
    return text[-_TRACEBACK_LINES:]


def _raised_in_probe(error: BaseException) -> bool:
    """Whether ``error`` was raised by the grader's probe code itself (a name it uses is missing)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename == PROBE_FILENAME


def _run_student(fn: Any, args: list[Any], kwargs: dict[str, Any], label: str) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # the student's exception is the answer, not a crash
        raise _Failure(
            {
                "kind": "raised",
                "name": label,
                "ename": type(error).__name__,
                "evalue": str(error)[:500],
                "traceback": _student_traceback(error),
            }
        ) from error


def _dispatch(request: dict[str, Any]) -> Any:
    namespace = _user_namespace()
    op = request.get("op")
    args = request.get("args", [])
    kwargs = request.get("kwargs", {})
    bind = request.get("bind") or {}
    if op == "get":
        return _resolve(namespace, request["name"], bind)
    if op == "describe":
        try:
            value = _resolve(namespace, request["name"], bind)
        except _Failure:
            return {"defined": False}
        kind = type(value)
        return {
            "defined": True,
            "type": f"{kind.__module__}.{kind.__qualname__}",
            "callable": callable(value),
        }
    if op == "call":
        fn = _resolve(namespace, request["name"], bind)
        if not callable(fn):
            kind = type(fn)
            raise _Failure({"kind": "not_callable", "name": request["name"], "type": kind.__qualname__})
        return _run_student(fn, args, kwargs, request["name"])
    if op == "probe":
        scope = dict(namespace)
        for name in bind:
            scope[name] = _bound(namespace, bind, name)
        exec(compile(request["source"], PROBE_FILENAME, "exec"), scope)
        try:
            return _run_student(scope[request["entry"]], args, kwargs, request["entry"])
        except _Failure as failure:
            missing = failure.__cause__ or failure.__context__
            if isinstance(missing, NameError) and _raised_in_probe(missing):
                if isinstance(missing, UnboundLocalError) or not missing.name:  # the probe's own bug
                    raise _Failure({"kind": "internal", "message": f"the probe failed: {missing}"}) from None
                raise _Failure({"kind": "undefined", "name": missing.name}) from None
            raise
    raise _Failure({"kind": "internal", "message": f"unknown op {op!r}"})


def serve(request_text: str, buffers: list[Any] | None = None) -> None:
    """Answer one request inside the kernel; the reply leaves as a display message."""
    from IPython.display import display  # only inside the kernel

    try:
        reply: dict[str, Any] = {"ok": encode(_dispatch(loads(request_text, buffers)))}
    except _Failure as failure:
        reply = {"error": failure.info}
    except WireError as error:
        reply = {"error": {"kind": "unencodable", "message": str(error)}}
    display({REPLY_MIME: reply}, raw=True)


def serve_message() -> None:
    """Answer the request that the execute request now running carries (see ``request_message``)."""
    from IPython import get_ipython  # only inside the kernel

    parent = get_ipython().kernel.get_parent("shell")
    serve(parent.get("metadata", {}).get(REQUEST_KEY, "null"), list(parent.get("buffers") or []))


def install_source() -> str:
    """Code that installs this module's source as ``KERNEL_MODULE`` inside a kernel."""
    from pathlib import Path  # never needed inside the kernel

    source = Path(__file__).read_text(encoding="utf-8")
    return (
        "import sys as _s, types as _t\n"
        f"_m = _t.ModuleType({KERNEL_MODULE!r})\n"
        f"exec(compile({source!r}, {KERNEL_FILENAME!r}, 'exec'), _m.__dict__)\n"
        f"_s.modules[{KERNEL_MODULE!r}] = _m\n"
        "del _s, _t, _m\n"
    )


#: The code of an execute request that carries a request (``request_message``).
SERVE_MESSAGE = f"__import__({KERNEL_MODULE!r}).serve_message()\n"


def request_message(request: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The metadata and buffers of an execute request of ``SERVE_MESSAGE`` that asks the
    installed handler to answer ``request``."""
    buffers: list[bytes] = []
    text = json.dumps(encode(request, buffers=buffers), allow_nan=False)
    return {REQUEST_KEY: text}, buffers
