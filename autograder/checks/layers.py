"""A network against the layer table of a handout.

The grader builds the table's network itself (on PyTorch's meta device: shapes and
parameter counts without allocating weights) and reads the student's model from its own
forward pass on a grader batch: every leaf module in the order it runs (forward hooks), and
the activations and layers a ``forward`` calls as functions (``F.relu``, ``torch.sigmoid``,
``x.relu()``, ``F.linear``, global average pooling as ``x.mean((2, 3))``), which a list of
modules would miss. Reshaping (``view``,
``flatten``, ``nn.Flatten``) and dropout change no layer and are not compared.

A table is a list of rows written as PyTorch writes modules, e.g.::

    ["Linear(784, 32)", "ReLU", "Linear(32, 10)"]
    ["Conv2d(3, 32, 7, stride=2, padding=3)", "ReLU", "MaxPool2d(3, 3)", "Flatten", "Linear(1152, 128)"]
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..checking import CheckFailed
from ..errors import StudentRaised
from .frameworks import KERAS_PRELUDE, not_a_module

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

#: What each layer type is compared on; types not listed are compared by type alone.
_CONFIG = {
    "Linear": ("in_features", "out_features"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
    "MaxPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "AdaptiveAvgPool2d": ("output_size",),
    "LeakyReLU": ("negative_slope",),
}
#: Modules that change no layer: left out of both sides before comparing.
FREE = ("Flatten", "Unflatten", "Identity", "Dropout", "Dropout1d", "Dropout2d")
NONLINEAR = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "ELU", "SELU", "SiLU", "Softplus", "PReLU", "ReLU6")
PARAMETRIC = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Bilinear")
_ALLOWED_ROWS = {*_CONFIG, *NONLINEAR, *FREE, "Softmax", "LogSoftmax", "BatchNorm1d", "BatchNorm2d",
                 "AdaptiveMaxPool2d", "Conv1d"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

TRACE_PROBE = KERAS_PRELUDE + '''
def _subject():  # binds no local name that could hide the student's (a model called `model`)
    return __MODEL__


def probe(shape):
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.overrides import TorchFunctionMode

    model = _subject()
    if _is_keras(model):
        return _keras_trace(model, shape)
    if not isinstance(model, nn.Module):
        return {"not_module": _what(model)}
    named = {
        "ReLU": [F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_],
        "LeakyReLU": [F.leaky_relu, F.leaky_relu_],
        "Sigmoid": [torch.sigmoid, F.sigmoid, torch.Tensor.sigmoid],
        "Tanh": [torch.tanh, F.tanh, torch.Tensor.tanh],
        "GELU": [F.gelu], "ELU": [F.elu], "SELU": [F.selu], "SiLU": [F.silu], "Softplus": [F.softplus],
        "Softmax": [F.softmax, torch.softmax, torch.Tensor.softmax],
        "LogSoftmax": [F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax],
        "MaxPool2d": [F.max_pool2d], "AvgPool2d": [F.avg_pool2d], "AdaptiveAvgPool2d": [F.adaptive_avg_pool2d],
        "Linear": [F.linear], "Conv2d": [F.conv2d],
    }
    kinds = {}
    for kind, functions in named.items():
        for function in functions:
            kinds[function] = kind
    ops, depth = [], [0]

    def shape_of(value):
        value = value[0] if isinstance(value, (tuple, list)) and value else value
        return list(value.shape[1:]) if isinstance(value, torch.Tensor) else None

    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value if isinstance(value, (int, float, bool, str)) or value is None else str(value)

    def entered(module, inputs):
        depth[0] += 1

    def left(module, inputs, output):
        depth[0] -= 1
        config = {key: plain(getattr(module, key)) for key in (
            "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding",
            "output_size", "negative_slope") if hasattr(module, key)}
        if isinstance(module, nn.Linear):
            config["bias"] = module.bias is not None
        ops.append({"type": type(module).__name__, "how": "module", "config": config, "out": shape_of(output),
                    "params": sum(p.numel() for p in module.parameters(recurse=False))})

    def _spatial(args, kwargs):
        tensor = args[0]
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None) if kwargs is not None else (
            args[1] if len(args) > 1 else None)
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or dims is None:
            return False
        dims = [dims] if isinstance(dims, int) else list(dims)
        return sorted(d % 4 for d in dims) == [2, 3]

    class Calls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            kind = kinds.get(func)
            if func in (torch.mean, torch.Tensor.mean) and depth[0] == 0 and args and _spatial(args, kwargs):
                kind = "AdaptiveAvgPool2d"  # global average pooling written as a mean over H and W
            if kind is not None and depth[0] == 0:
                config = {}
                if kind in ("Linear", "Conv2d") and len(args) > 1 and isinstance(args[1], torch.Tensor):
                    weight = args[1]
                    if kind == "Linear":
                        config = {"in_features": weight.shape[1], "out_features": weight.shape[0]}
                    else:
                        config = {"in_channels": weight.shape[1], "out_channels": weight.shape[0],
                                  "kernel_size": list(weight.shape[2:])}
                if kind == "AdaptiveAvgPool2d" and func in (torch.mean, torch.Tensor.mean):
                    config = {"output_size": 1}
                ops.append({"type": kind, "how": "function", "config": config, "out": shape_of(result),
                            "params": 0})
            return result

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [h for m in leaves for h in (m.register_forward_pre_hook(entered), m.register_forward_hook(left))]
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(tuple(shape), generator=generator).to(device=device, dtype=dtype)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), Calls():
            output = model(batch)
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return {
        "ops": ops,
        "out": shape_of(output),
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
'''


@dataclass(frozen=True)
class Layer:
    """One row of a table, or one layer found in a forward pass."""

    type: str
    config: dict[str, Any] = field(default_factory=dict)
    out: tuple[int, ...] | None = None
    params: int = 0

    def written(self) -> str:
        """As PyTorch writes it: Linear(784, 32), Conv2d(3, 32, kernel_size=7, stride=2), ReLU."""
        keys = _CONFIG.get(self.type, ())
        shown = [_plain(self.config[k]) for k in keys[:2] if k in self.config and self.type in ("Linear", "Conv2d")]
        shown += [f"{k}={_plain(self.config[k])}" for k in keys if k in self.config and
                  not (self.type in ("Linear", "Conv2d") and k in keys[:2])]
        return f"{self.type}({', '.join(shown)})" if shown else self.type


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(set(map(str, value))) == 1 and value:
        return str(value[0])
    return str(value)


def _same(key: str, a: Any, b: Any) -> bool:
    """Values of a layer setting, where 3 and (3, 3) are the same kernel."""
    def flat(value: Any) -> list[Any]:
        return list(value) if isinstance(value, (list, tuple)) else [value]
    fa, fb = flat(a), flat(b)
    if len(fa) != len(fb):
        fa, fb = (fa * len(fb), fb) if len(fa) == 1 else (fa, fb * len(fa)) if len(fb) == 1 else (fa, fb)
    if key == "negative_slope":
        return all(abs(float(x) - float(y)) < 1e-9 for x, y in zip(fa, fb)) and len(fa) == len(fb)
    return [str(x) for x in fa] == [str(x) for x in fb]


def parse_row(row: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``"Conv2d(3, 32, 7, stride=2)"`` as its type, arguments and keywords (literals only)."""
    try:
        node = ast.parse(row.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"layer row {row!r} is not written as Type(arguments)") from None
    if isinstance(node, ast.Name):
        node = ast.Call(func=node, args=[], keywords=[])
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.func.id not in _ALLOWED_ROWS:
        raise ValueError(f"layer row {row!r}: the type must be one of {', '.join(sorted(_ALLOWED_ROWS))}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except ValueError:
        raise ValueError(f"layer row {row!r}: arguments must be numbers, tuples or True/False") from None
    return node.func.id, args, kwargs


def table(rows: list[str], input_shape: tuple[int, ...]) -> list[Layer]:
    """The grader's own build of ``rows`` for inputs of ``input_shape`` (without the batch
    dimension): each row's layer, output shape and parameter count."""
    import torch
    from torch import nn

    tensor = torch.empty((1, *input_shape), device="meta")
    built = []
    for row in rows:
        kind, args, kwargs = parse_row(row)
        weighted = kind in PARAMETRIC or kind.startswith("BatchNorm")
        module = getattr(nn, kind)(*args, **kwargs, **({"device": "meta"} if weighted else {}))
        try:
            tensor = module(tensor)
        except RuntimeError as error:
            raise ValueError(f"layer row {row!r} does not take the output of the row before, of shape "
                             f"{tuple(tensor.shape[1:])}: {error}") from None
        config = {key: _listed(getattr(module, key)) for key in _CONFIG.get(kind, ()) if hasattr(module, key)}
        if kind == "Linear":
            config["bias"] = module.bias is not None
        built.append(Layer(kind, config, tuple(int(s) for s in tensor.shape[1:]),
                           sum(p.numel() for p in module.parameters())))
    return built


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Trace:
    """What a forward pass of the student's model ran, and its parameter counts."""

    layers: list[Layer]
    total: int
    trainable: int
    out: tuple[int, ...] | None

    def compared(self, free: tuple[str, ...] = FREE) -> list[Layer]:
        return [layer for layer in self.layers if layer.type not in free]

    def hidden_layers(self) -> int:
        """Parametric layers on the forward path that a nonlinearity follows before the next
        parametric layer: the hidden layers of an MLP or CNN."""
        hidden, pending = 0, False
        for layer in self.layers:
            if layer.type in PARAMETRIC:
                pending = True
            elif layer.type in NONLINEAR and pending:
                hidden, pending = hidden + 1, False
        return hidden


def trace(nb: KernelChannel, model: str, input_shape: tuple[int, ...], *, batch: int = 2) -> Trace:
    """Run ``model`` (a name in the notebook) forward on a grader batch of ``input_shape``
    and read back what ran. A value that is not a ``torch.nn.Module`` is the student's mistake."""
    if not _NAME.match(model):
        raise ValueError(f"{model!r} is not a name")
    found = nb.probe(TRACE_PROBE.replace("__MODEL__", model), [batch, *input_shape])
    if "not_module" in found:
        why = f"its layers read in the order they run, but {found['keras']}" if found.get("keras") else ""
        raise not_a_module(model, found["not_module"], why)
    layers = [Layer(op["type"], dict(op.get("config") or {}), tuple(op["out"]) if op.get("out") else None,
                    int(op.get("params", 0))) for op in found["ops"]]
    out = tuple(found["out"]) if found.get("out") else None
    return Trace(layers, int(found["total"]), int(found["trainable"]), out)


def trace_any(nb: KernelChannel, model: str, shapes: list[tuple[int, ...]], *, batch: int = 2) -> Trace:
    """``trace`` on the first of ``shapes`` (one input's shape, as students' networks take it:
    ``(784,)``, ``(1, 28, 28)``...) that ``model`` runs on; where it runs on none, the first
    shape's failure."""
    first: StudentRaised | None = None
    for shape in shapes:
        try:
            return trace(nb, model, shape, batch=batch)
        except StudentRaised as error:
            first = first or error
    assert first is not None, "no shapes to try"
    raise first


def _global_average(layer: Layer) -> bool:
    """Average pooling over the whole map (to 1 x 1, or to a vector: a mean over H and W),
    whether written AdaptiveAvgPool2d(1), AvgPool2d over the map's full size, or a mean."""
    if layer.type not in ("AdaptiveAvgPool2d", "AvgPool2d"):
        return False
    if layer.out is not None:
        return len(layer.out) == 1 or all(size == 1 for size in layer.out[1:])
    return layer.type == "AdaptiveAvgPool2d" and _same("output_size", layer.config.get("output_size"), 1)


def _difference(got: Layer, want: Layer) -> str | None:
    if _global_average(want) and _global_average(got):
        return None
    if got.type != want.type:
        return f"is {got.written()}"
    for key in _CONFIG.get(want.type, ()):
        if key in want.config and key in got.config and not _same(key, got.config[key], want.config[key]):
            return f"is {got.written()}"
    if want.type == "Linear" and got.config.get("bias") is False and want.config.get("bias", True):
        return "has no bias"
    return None


def expect_table(found: Trace, rows: list[str], input_shape: tuple[int, ...], *, what: str,
                 free: tuple[str, ...] = FREE, count_parameters: bool = True) -> list[Layer]:
    """Fail unless the layers ``found`` are the table's, in order (modules or functions,
    reshaping and dropout aside), and the model has the table's parameter count. Returns
    the grader's build of the table."""
    want = table(rows, input_shape)
    got, wanted = found.compared(free), [layer for layer in want if layer.type not in free]
    for number, (g, w) in enumerate(zip(got, wanted), start=1):
        problem = _difference(g, w)
        if problem:
            raise CheckFailed(f"layer {number} of `{what}` {problem}; the handout's table has {w.written()} there "
                              f"(the table: {_summary(wanted)})")
    if len(got) > len(wanted):
        extra = got[len(wanted)]
        raise CheckFailed(f"`{what}` has {extra.written()} after its last layer of the table (layer {len(wanted)}, "
                          f"{wanted[-1].written()}); the table ends there ({_summary(wanted)})"
                          if wanted else f"`{what}` should have no layers, found {extra.written()}")
    if len(got) < len(wanted):
        missing = wanted[len(got)]
        raise CheckFailed(f"`{what}` ends after {len(got)} layers; the handout's table goes on with "
                          f"{missing.written()} ({_summary(wanted)})")
    total = sum(layer.params for layer in want)
    if count_parameters and found.total != total:
        raise CheckFailed(f"`{what}` has {found.total:,} parameters; the handout's table has {total:,} "
                          "(weights and biases)")
    return want


BLOCKS_PROBE = KERAS_PRELUDE + '''
def _subject():
    return __MODEL__


def probe():
    from torch import nn
    model = _subject()
    if not isinstance(model, nn.Module):
        return {"not_module": _what(model)}
    found = []
    for name, module in model.named_modules():
        convs = sum(isinstance(m, nn.Conv2d) for m in module.modules())
        if name and convs and list(module.children()):
            kind = type(module)
            found.append({"name": name, "class": kind.__module__ + "." + kind.__qualname__,
                          "layers": [type(m).__name__ for m in module.modules()][1:]})
    return {"blocks": found}
'''


@dataclass(frozen=True)
class Block:
    """A container of convolutions inside a model: its name, its class and its layers."""

    name: str
    cls: str
    layers: tuple[str, ...]

    @property
    def kind(self) -> str:
        """A block written as its own class counts by its class; a built-in container
        (``nn.Sequential``) by its layers."""
        return "layers " + " > ".join(self.layers) if self.cls.startswith("torch.nn.") else self.cls


def blocks(nb: KernelChannel, model: str) -> list[Block]:
    """The containers of convolutions in ``model`` (a name in the notebook), outermost first."""
    if not _NAME.match(model):
        raise ValueError(f"{model!r} is not a name")
    found = nb.probe(BLOCKS_PROBE.replace("__MODEL__", model))
    if "not_module" in found:
        raise not_a_module(model, found["not_module"], "its blocks read from a PyTorch network's modules")
    return [Block(str(b["name"]), str(b["class"]), tuple(b["layers"])) for b in found["blocks"]]


def expect_repeated_block(nb: KernelChannel, model: str, *, times: int) -> Block:
    """Fail unless one convolutional block is used at least ``times`` times in ``model``:
    written once and layered. A block of a class of its own is written once by being a
    class; blocks that are built-in containers (``nn.Sequential``) of the same layers count
    as one block written once only where the notebook's source builds them in one place
    (a function that makes them, or a loop or comprehension), not pasted out one by one."""
    found = blocks(nb, model)
    counts: dict[str, list[Block]] = {}
    for block in found:
        counts.setdefault(block.kind, []).append(block)
    if not counts or max(len(used) for used in counts.values()) < times:
        shown = ", ".join(f"{b.name} ({b.cls.rsplit('.', 1)[-1]})" for b in found) or "none"
        raise CheckFailed(f"no convolutional block is used {times} times in `{model}`; its containers of "
                          f"convolutions: {shown}")
    repeated = [used for used in counts.values() if len(used) >= times]
    if all(used[0].cls.startswith("torch.nn.") for used in repeated) and not built_in_one_place(
            [cell.source for cell in nb.run.cells]):
        used = max(repeated, key=len)
        raise CheckFailed(f"`{model}` has {len(used)} blocks of the same layers ({', '.join(b.name for b in used)}), "
                          "but the notebook writes each out on its own: nothing in it (a function, a class, a loop "
                          "or a comprehension) builds them in one place, as a block written once and layered is")
    return max(counts.values(), key=len)[0]


def _builds_convolutions(node: ast.AST) -> bool:
    """Whether ``node`` calls a ``Conv...`` layer's or ``Sequential``'s constructor somewhere inside."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            name = inner.func.attr if isinstance(inner.func, ast.Attribute) else getattr(inner.func, "id", "")
            if name.startswith("Conv") or name == "Sequential":
                return True
    return False


def built_in_one_place(sources: list[str]) -> bool:
    """Whether the notebook's source builds containers of convolutions in one place used
    many times: a function other than a module's own ``__init__``/``forward`` that makes
    them, or a loop or comprehension that does."""
    from ..grading.names import parse_cell

    for source in sources:
        tree = parse_cell(source)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, (ast.FunctionDef, ast.Lambda)) and getattr(node, "name", "") in ("__init__",
                                                                                                  "forward"):
                continue
            loops = (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.FunctionDef, ast.Lambda)
            if isinstance(node, loops) and _builds_convolutions(node):
                return True
    return False


def _summary(layers: list[Layer]) -> str:
    return " → ".join(layer.written() for layer in layers)

