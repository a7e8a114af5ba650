"""Networks written with Keras (TensorFlow 2), as some handouts ask (fit3181-2023-a1).

The checks read a network by running it: its layers in the order they run, its outputs on
the grader's inputs. For a Keras model the kernel does the same with Keras's own calls
(``KERAS_PRELUDE``, kernel side): the model's layers called one after another on a grader
batch (or, for a functional model, its graph's intermediate outputs), each read as the
PyTorch layer it is (``Dense`` as ``Linear``, its ``activation`` as the row after it,
``Conv2D`` as ``Conv2d`` with channels first); its outputs on the grader's inputs,
pictures turned channels last as Keras takes them. What no Keras call can give (the
grader's own training of the network, its gradients for an attack) goes to a marker with
the reason (``not_a_module``), never a 0.
"""

from __future__ import annotations

import re

from ..checking import CheckFailed
from ..errors import Referred

#: The packages whose networks are another framework's: a check that needs a PyTorch
#: network refers theirs to a marker instead of failing them.
OTHER_FRAMEWORKS = {"keras": "Keras", "tf_keras": "Keras", "tensorflow": "TensorFlow"}

KERAS_PRELUDE = '''
def _is_keras(value):
    """A Keras model or layer (Keras 3 or tf.keras), by its classes' packages."""
    return any(getattr(c, "__module__", "").split(".")[0] in ("keras", "tf_keras") for c in type(value).__mro__) \\
        and hasattr(value, "count_params")


def _what(value):
    """The class of ``value`` (``module.qualname``), with the other framework's class it
    derives from where it does (a notebook's ``class Net(keras.Model)`` is ``__main__.Net``)."""
    name = type(value).__module__ + "." + type(value).__qualname__
    for base in type(value).__mro__[1:]:
        if getattr(base, "__module__", "").split(".")[0] in ("keras", "tf_keras", "tensorflow"):
            return name + " (a " + base.__module__ + "." + base.__qualname__ + ")"
    return name


def _is_keras_model(value):
    """A Keras model (not one of its layers)."""
    return _is_keras(value) and any(c.__name__ == "Model" for c in type(value).__mro__)


def _channels_last(array, model=None):
    """Pictures sent channels first (N x C x H x W, as PyTorch takes them) as Keras takes
    them, channels last, unless the model's own input says channels first."""
    import numpy as np
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[3] in (1, 3):
        return array
    try:
        wanted = tuple(model.inputs[0].shape[1:]) if model is not None and getattr(model, "inputs", None) else None
    except Exception:
        wanted = None
    if wanted is not None and len(wanted) == 3 and wanted[0] == array.shape[1] and wanted[2] != array.shape[1]:
        return array
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))


def _keras_outputs(model, inputs, batch):
    """The model's outputs (numpy, float32) on ``inputs``, in inference mode, ``batch`` at a time."""
    import numpy as np
    inputs = _channels_last(inputs, model)
    out = [np.asarray(model(inputs[i:i + batch], training=False), dtype=np.float32)
           for i in range(0, len(inputs), batch)]
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


_KERAS_ACTIVATIONS = {
    "relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "log_softmax": "LogSoftmax",
    "elu": "ELU", "selu": "SELU", "gelu": "GELU", "silu": "SiLU", "swish": "SiLU", "softplus": "Softplus",
    "leaky_relu": "LeakyReLU", "relu6": "ReLU6",
}


def _keras_layers(model):
    """The model's layers in order, nested models opened, input layers left out."""
    found = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if getattr(layer, "layers", None):
            found += _keras_layers(layer)
        else:
            found.append(layer)
    return found


def _keras_rows(layer, out):
    """A Keras layer as the PyTorch rows it is: its type, settings and the activation after it."""
    kind = type(layer).__name__
    shape = list(out.shape[1:])
    if len(shape) == 3:  # channels last, read as PyTorch's C x H x W
        shape = [shape[2], shape[0], shape[1]]
    params = int(layer.count_params()) if getattr(layer, "built", True) else 0
    config, row = {}, kind

    def pair(value):
        return [int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value))]

    def padding(size):
        return [k // 2 for k in size] if getattr(layer, "padding", "valid") == "same" else [0] * len(size)

    if kind == "Dense":
        row = "Linear"
        config = {"in_features": int(layer.kernel.shape[0]), "out_features": int(layer.units),
                  "bias": bool(layer.use_bias)}
    elif kind == "Conv2D":
        row, size = "Conv2d", pair(layer.kernel_size)
        config = {"in_channels": int(layer.kernel.shape[2]), "out_channels": int(layer.filters),
                  "kernel_size": size, "stride": pair(layer.strides), "padding": padding(size)}
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        row, size = ("MaxPool2d" if kind.startswith("Max") else "AvgPool2d"), pair(layer.pool_size)
        config = {"kernel_size": size, "stride": pair(layer.strides or layer.pool_size), "padding": padding(size)}
    elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        row, config = ("AdaptiveAvgPool2d" if "Average" in kind else "AdaptiveMaxPool2d"), {"output_size": 1}
    elif kind == "BatchNormalization":
        row = "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"
    elif kind in ("Reshape", "Permute"):
        row = "Flatten" if len(shape) == 1 else "Unflatten"
    elif kind in ("Dropout", "SpatialDropout2D", "GaussianDropout"):
        row = "Dropout"
    elif kind == "LeakyReLU":
        config = {"negative_slope": float(getattr(layer, "negative_slope", getattr(layer, "alpha", 0.3)))}
    elif kind == "Activation":
        name = getattr(layer.activation, "__name__", str(layer.activation))
        row = _KERAS_ACTIVATIONS.get(name, name)
    rows = [{"type": row, "how": "module", "config": config, "out": shape, "params": params}]
    activation = getattr(layer, "activation", None) if kind != "Activation" else None
    name = getattr(activation, "__name__", None) if activation is not None else None
    if name and name != "linear":
        rows.append({"type": _KERAS_ACTIVATIONS.get(name, name), "how": "module", "config": {}, "out": shape,
                     "params": 0})
    return rows


def _keras_trace(model, shape):
    """What a Keras model runs on a grader batch of ``shape`` (the batch first; pictures
    channels first, as PyTorch takes them), in the form of the PyTorch trace."""
    import numpy as np
    batch = _channels_last(np.random.default_rng(0).random(tuple(shape)).astype(np.float32), model)
    output = np.asarray(model(batch, training=False))
    layers = _keras_layers(model)
    outs, x = [], batch
    try:
        for layer in layers:
            x = layer(x)
            outs.append(np.asarray(x))
        chained = len(outs) == len(layers) and outs and outs[-1].shape == output.shape \\
            and np.allclose(outs[-1], output, rtol=1e-4, atol=1e-5)
    except Exception:
        chained = False
    if not chained:  # branches (a skip connection): the graph's own intermediate outputs
        try:
            import keras
            outs = [np.asarray(o) for o in keras.Model(model.inputs, [l.output for l in layers])(batch)]
        except Exception as error:
            return {"not_module": _what(model),
                    "keras": "its layers do not run one after another and it has no graph of them to read ("
                             + type(error).__name__ + ")"}
    ops = [row for layer, out in zip(layers, outs) for row in _keras_rows(layer, out)]
    out = list(output.shape[1:])
    return {"ops": ops, "out": [out[2], out[0], out[1]] if len(out) == 3 else out,
            "total": int(model.count_params()),
            "trainable": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))}
'''


_PACKAGE = re.compile(r"(?:^|\(a )(" + "|".join(OTHER_FRAMEWORKS) + r")\.")


def framework(type_name: str) -> str | None:
    """The other framework a class belongs to (``module.qualname``, with the class it derives
    from as the kernel's ``_what`` writes it), or None."""
    found = _PACKAGE.search(type_name)
    return OTHER_FRAMEWORKS[found.group(1)] if found else None


def not_a_module(name: str, type_name: str, why: str = "") -> AssertionError | Referred:
    """What a check raises where ``name`` holds no PyTorch network: another framework's
    network goes to a marker (the grader could not read it this way); anything else is the
    student's mistake."""
    other = framework(type_name)
    if other is not None:
        return Referred(f"`{name}` is a {other} network ({type_name}); this item needs "
                        f"{why or 'a PyTorch network the grader runs itself'}: a marker grades it")
    return CheckFailed(f"`{name}` should be a torch.nn.Module, is a {type_name}")
