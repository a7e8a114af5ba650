"""Submissions written with TensorFlow/Keras (the FIT3181 handouts are written for it): their
tensors cross the wire as numpy arrays, a Part 1 of fit3181-2023-a1 answered with TensorFlow
ops earns every automatic point, and a Keras model's ``predict`` is read as classes. See the
README, "TensorFlow and Keras submissions", for what is graded and what needs PyTorch.

The tests that need TensorFlow skip only where it cannot be imported; CI installs it (the
``test`` extra)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.authoring.variants import automatic_items
from autograder.course.assignment import load_assignment
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission

from .conftest import ROOT

ASSIGNMENT = "fit3181-2023-a1"
PART1 = "A1_Part1_Solutions.ipynb"


@pytest.fixture(scope="module")
def tf():
    """TensorFlow is there to run in kernels and fresh processes: it is never imported by the
    test process itself, where it breaks PyTorch's meta device (a segmentation fault in the
    grader's own build of a layer table, which every later test of the worker would meet)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not importable here (CI installs it: the `test` extra's tensorflow-cpu)")


def in_a_fresh_process(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip().endswith("ok"), (done.stdout[-2000:], done.stderr[-3000:])


# --------------------------------------------------------------------------- the wire


def test_tensorflow_tensors_become_arrays_and_values_without_numbers_cross_as_opaque(tf):
    in_a_fresh_process("""
import numpy as np
import tensorflow as tf
from autograder.grading import wire

keras = tf.keras
eager = tf.constant([[1.0, 2.0], [3.0, 4.0]], dtype=tf.float64) * 2
back = wire.loads(wire.dumps({
    "eager": eager, "variable": tf.Variable([1, 2, 3]), "keras": keras.Variable(np.ones((2, 3), np.float32)),
    "scalar": tf.reduce_sum(eager), "index": tf.argmax(tf.constant([0.1, 0.7, 0.2])), "flag": tf.constant(True),
    "half": tf.constant([1.5, -2.0], dtype=tf.bfloat16), "list": [tf.zeros(2), (tf.ones(1),)],
}))
assert back["eager"].dtype == np.float64 and np.array_equal(back["eager"], [[2, 4], [6, 8]])
assert back["variable"].dtype == np.int32 and back["variable"].tolist() == [1, 2, 3]
assert back["keras"].shape == (2, 3) and back["keras"].sum() == 6
assert back["scalar"].shape == () and back["scalar"] == 20  # a 0-d array, as a torch scalar gives
assert back["index"].dtype == np.int64 and back["index"] == 1 and bool(back["flag"]) is True
assert back["half"].dtype == np.float32 and back["half"].tolist() == [1.5, -2.0]  # bfloat16 widened
assert [part.tolist() for part in (back["list"][0], back["list"][1][0])] == [[0, 0], [1]]

back = wire.loads(wire.dumps({
    "strings": tf.constant(["a", "b"]), "symbolic": keras.Input((3,)),
    "model": keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
}))
assert all(isinstance(value, wire.Opaque) for value in back.values()), back
assert back["symbolic"].type_name.startswith("keras.") and "Sequential" in back["model"].type_name
print("ok")
""")


def test_the_wire_never_imports_tensorflow():
    """The wire runs in the kernel: a class merely named like TensorFlow's crosses as opaque,
    and TensorFlow is not imported where the student's code has not imported it."""
    code = """
import sys
from autograder.grading import wire

class Fake:
    def numpy(self):
        raise SystemExit("called")

Fake.__module__ = "tensorflow.python.framework.ops"
back = wire.loads(wire.dumps([Fake(), 1.5]))
assert isinstance(back[0], wire.Opaque) and back[1] == 1.5, back
assert not {"tensorflow", "keras"} & set(sys.modules), sorted(m for m in sys.modules if "tensorflow" in m)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


# --------------------------------------------------------------------------- Part 1 graded


ELU = '''
def elu(x, alpha=1.0):
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    return tf.where(x > 0, x, alpha * (tf.exp(tf.minimum(x, 0.0)) - 1))


def elu_derivative(x, alpha=1.0):
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    return tf.where(x > 0, tf.ones_like(x), alpha * tf.exp(tf.minimum(x, 0.0)))


grid = np.linspace(-4, 4, 201)
plt.plot(grid, elu(grid), label="ELU")
plt.plot(grid, elu_derivative(grid), label="derivative")
plt.legend()
plt.show()
'''

FEED_FORWARD = '''
tx, tW1, tb1, tW2, tb2, tW3, tb3 = (tf.constant(v) for v in (x, W1, b1, W2, b2, W3, b3))
q12_h1 = tf.nn.relu(tf.matmul(tx[None, :], tW1)[0] + tb1)
q12_h2 = tf.nn.relu(tf.matmul(q12_h1[None, :], tW2)[0] + tb2)
q12_h3 = tf.matmul(q12_h2[None, :], tW3)[0] + tb3
q12_p = tf.nn.softmax(q12_h3)
q12_predicted_class = tf.argmax(q12_p) + 1  # a tf.int64 tensor
q12_correct = q12_predicted_class == y  # a tf.bool tensor
q12_ce_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[y - 1], logits=q12_h3[None, :])[0]
smoothing = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=alpha)
q12_ls_loss = smoothing(tf.one_hot([y - 1], K), q12_h3[None, :])  # Keras: a float32 scalar tensor
print(q12_h1, q12_h2, q12_h3, q12_p, q12_predicted_class, q12_correct, q12_ce_loss, q12_ls_loss)
'''

BACKPROP = '''
def forward_backward(x, y, W1, b1, W2, b2):
    x = tf.reshape(tf.convert_to_tensor(x, dtype=tf.float64), (1, -1))
    W1, b1, W2, b2 = (tf.Variable(tf.convert_to_tensor(v, dtype=tf.float64)) for v in (W1, b1, W2, b2))
    with tf.GradientTape() as tape:
        h1_bar = tf.matmul(x, W1) + b1
        h1 = tf.nn.relu(h1_bar)
        h2 = tf.matmul(h1, W2) + b2
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[y - 1], logits=h2)[0]
    dh2, dh1, dh1_bar, dW1, db1, dW2, db2 = tape.gradient(loss, [h2, h1, h1_bar, W1, b1, W2, b2])
    return {"loss": loss, "dl_dh2": dh2[0], "dl_dW2": dW2, "dl_db2": db2,
            "dl_dh1": dh1[0], "dl_dh1_bar": dh1_bar[0], "dl_dW1": dW1, "dl_db1": db1}


def sgd_update(params, grads, lr):
    return {name: tf.convert_to_tensor(params[name]) - lr * tf.convert_to_tensor(grads["dl_d" + name])
            for name in ("W1", "b1", "W2", "b2")}


tf.random.set_seed(SEED)
q13_x, q13_y, q13_lr = tf.constant([1.0, -1.0, 0.0], dtype=tf.float64), 3, 0.01
q13_params = {"W1": tf.Variable(tf.random.normal((3, 4), dtype=tf.float64)),
              "b1": tf.Variable(tf.random.normal((4,), dtype=tf.float64)),
              "W2": tf.Variable(tf.random.normal((4, 3), dtype=tf.float64)),
              "b2": tf.Variable(tf.random.normal((3,), dtype=tf.float64))}
q13_grads = forward_backward(q13_x, q13_y, **q13_params)
q13_loss = q13_grads["loss"]
q13_updated = sgd_update(q13_params, q13_grads, q13_lr)
print(q13_loss)
'''

# The reference's code cells, found by what they start with, and what replaces them.
EDITS = {
    "import numpy as np": "import numpy as np\nimport matplotlib.pyplot as plt\nimport tensorflow as tf",
    "def elu(": ELU,
    "# BEGIN SOLUTION\nq12_h1": FEED_FORWARD,
    "def forward_backward(": BACKPROP,
}


def tensorflow_part1(folder: Path) -> Path:
    """The reference's Part 1 with every answer computed by TensorFlow, left as tensors."""
    nb = nbformat.read(load_assignment(ASSIGNMENT).reference_dir / PART1, as_version=4)
    done = set()
    for cell in nb.cells:
        for start, source in EDITS.items():
            if cell.cell_type == "code" and cell.source.lstrip().startswith(start):
                cell.source = source.strip() + "\n"
                done.add(start)
    assert done == set(EDITS), f"the reference's Part 1 has no code cell starting {set(EDITS) - done}"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / PART1)
    return folder


def test_a_part1_written_with_tensorflow_earns_every_automatic_point(tf, tmp_path: Path):
    assignment = load_assignment(ASSIGNMENT)
    folder = tensorflow_part1(tmp_path / "submission")
    grade = grade_submission(assignment, open_submission(folder), sandbox="local",
                             options=GradeOptions(synthetic=True, notebooks=(PART1,)))
    part1 = {item for item in automatic_items(assignment) if item.startswith("1.")}
    assert part1 >= {"1.1a", "1.2a", "1.2e", "1.2g", "1.3a", "1.3b", "1.3c", "1.3d"}
    found = {item.id: item for item in grade.items if item.id in part1}
    assert set(found) == part1
    lost = {item.id: f"{item.status}: {item.reason}" for item in found.values() if item.earned < item.max_points}
    assert lost == {}


# --------------------------------------------------------------------------- Parts 2-3: predict


KERAS_CELLS = [
    "import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras",
    '''
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
X_probe = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
expected = np.argmax(model(X_probe).numpy(), axis=1)


def predict(model, X):
    return model.predict(X, verbose=0)  # per-class scores, numpy


def predict_classes(model, X):
    return tf.argmax(model(X), axis=1)  # class codes, a tf.int64 tensor
''',
]


def test_a_keras_predict_is_read_as_classes(tf, tmp_path: Path):
    from autograder.checks.training import predict_codes
    from autograder.grading.channel import KernelChannel

    from .conftest import notebook, start_live

    live = start_live(notebook(*KERAS_CELLS), tmp_path, total_timeout=300, cell_timeout=120)
    try:
        nb = KernelChannel(live, timeout=120)
        expected = nb.get("expected")
        for function in ("predict", "predict_classes"):
            codes = predict_codes(nb, function, "model", "X_probe", count=50, classes=3, batch=16)
            assert codes.dtype == np.int64 and np.array_equal(codes, expected), function
        sent = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
        assert predict_codes(nb, "predict", "model", sent, count=7, classes=3).shape == (7,)
    finally:
        live.shutdown()


# --------------------------------------------------------------------------- Keras networks read as layers


KERAS_NETWORKS = '''
import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(0)
mlp = keras.Sequential([keras.Input((784,)), layers.Dense(20, activation="relu"), layers.Dense(40, activation="relu"),
                        layers.Dense(26, activation="softmax")])
mlp_sigmoid = keras.Sequential([keras.Input((784,)), layers.Dense(20, activation="sigmoid"),
                                layers.Dense(40, activation="relu"), layers.Dense(26)])
cnn = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, padding="same", activation="relu"),
                        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10)])
entry = keras.Input((8, 8, 3))
body = layers.Conv2D(3, 3, padding="same")(entry)
joined = layers.Activation("relu")(layers.Add()([entry, body]))
skip = keras.Model(entry, layers.Dense(4)(layers.GlobalAveragePooling2D()(joined)))


def smoothing(y_true, y_pred, alpha):  # Keras's order, on probabilities
    K = y_pred.shape[-1]
    target = (1 - alpha) * tf.one_hot(tf.cast(y_true, tf.int32), K, dtype=y_pred.dtype) + alpha / K
    return tf.reduce_mean(-tf.reduce_sum(target * tf.math.log(y_pred), axis=-1))


def fgsm_tf(model, x, y, epsilon, sign=1.0, from_logits=True):  # on a Keras model, as the handout's students
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=from_logits)
    return tf.clip_by_value(x + sign * epsilon * tf.sign(tape.gradient(loss, x)), 0, 1)


def fgsm_tf_softmax(model, x, y, epsilon):  # for a Keras model ending in softmax (Keras's default loss)
    return fgsm_tf(model, x, y, epsilon, from_logits=False)


def fgsm_tf_down(model, x, y, epsilon):  # steps down the gradient
    return fgsm_tf(model, x, y, epsilon, sign=-1.0)


def fgsm_tf_broken(model, x, y, epsilon):
    return model.no_such_method(x)


def smoothing_over_k_minus_one(y_true, y_pred, alpha):  # alpha spread over the other K - 1 classes
    K = y_pred.shape[-1]
    one_hot = tf.one_hot(tf.cast(y_true, tf.int32), K, dtype=y_pred.dtype)
    target = (1 - alpha) * one_hot + alpha / (K - 1) * (1 - one_hot)
    return tf.reduce_mean(-tf.reduce_sum(target * tf.math.log(y_pred), axis=-1))
'''


BIND = """
def probe(name):
    get_ipython().user_ns["label_smoothing_loss"] = get_ipython().user_ns[name]
    return True
"""


def _rubric_check(module: str):
    path = ROOT / "rubrics" / ASSIGNMENT / "checks" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"_keras_{module}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_keras_networks_are_read_as_their_pytorch_layers_and_measured_by_keras(tf, tmp_path: Path):
    """A Keras network is graded as a PyTorch one is, both ways: its layers read as the rows
    they are (a Dense's activation as the row after it, convolutions channels first, a
    functional model's skip connection from its graph), its outputs by Keras's own call on
    pictures sent channels first; the binder lists them as networks; a wrong table still
    fails. A TensorFlow attack runs on the grader's network built with Keras (scores, or
    softmax at the end) and is judged, right or wrong; one that runs on neither goes to a
    marker, never a 0. A label smoothing written with TensorFlow in Keras's order is
    measured by a tape: right keeps 2.6a, alpha / (K - 1) loses it."""
    from autograder.checking import CheckFailed
    from autograder.checks.layers import expect_table, trace
    from autograder.checks.training import outputs
    from autograder.errors import Referred
    from autograder.grading.channel import KernelChannel

    from .conftest import notebook, start_live

    live = start_live(notebook(KERAS_NETWORKS), tmp_path, total_timeout=300, cell_timeout=120)
    try:
        nb = KernelChannel(live, timeout=120)
        mlp = ["Linear(784, 20)", "ReLU", "Linear(20, 40)", "ReLU", "Linear(40, 26)"]
        expect_table(trace(nb, "mlp", (784,)), mlp, (784,), what="mlp", free=("Softmax",))
        with pytest.raises(CheckFailed, match="layer 2 of `mlp_sigmoid`"):
            expect_table(trace(nb, "mlp_sigmoid", (784,)), mlp, (784,), what="mlp_sigmoid")
        cnn = trace(nb, "cnn", (1, 28, 28))
        expect_table(cnn, ["Conv2d(1, 8, 3, padding=1)", "ReLU", "MaxPool2d(2, 2)", "Flatten", "Linear(1568, 10)"],
                     (1, 28, 28), what="cnn")
        assert cnn.layers[0].out == (8, 28, 28) and cnn.out == (10,) and cnn.total == 80 + 15690
        joined = trace(nb, "skip", (3, 8, 8))
        assert [layer.type for layer in joined.layers] == ["Conv2d", "Add", "ReLU", "AdaptiveAvgPool2d", "Linear"]
        from autograder.grading.binding import CANDIDATES_PROBE

        listed = {entry["expression"]: entry for entry in nb.probe(CANDIDATES_PROBE, "module", [[784]], "", [])}
        assert listed["mlp"]["outputs"] == [26] and listed["mlp"]["params"] == 17606
        assert listed["cnn"]["outputs"] == [None]  # takes no row of 784
        pictures = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
        scores = outputs(nb, "cnn", pictures, what="pictures")
        assert scores.shape == (5, 10) and np.isfinite(scores).all()

        from autograder.checks import attacks
        from autograder.checks.frameworks import not_a_module

        attacks.expect_fgsm(nb, "fgsm_tf")  # run on the grader's network built with Keras
        attacks.expect_fgsm(nb, "fgsm_tf_softmax")  # ... and on its twin ending in softmax
        with pytest.raises(CheckFailed, match="steps down the gradient"):
            attacks.expect_fgsm(nb, "fgsm_tf_down")
        with pytest.raises(Referred, match="and on the same network built with Keras"):
            attacks.run_attack(nb, "fgsm_tf_broken", epsilon=attacks.EPSILON, args=attacks.FGSM_ARGS)

        refused = not_a_module("cnn", "keras.src.models.sequential.Sequential", "the grader's attacks")
        assert isinstance(refused, Referred) and "a marker grades it" in str(refused)
        assert isinstance(not_a_module("cnn", "builtins.dict"), CheckFailed)

        part2 = _rubric_check("check_part2")
        given = {"alphas": [0.0, 0.1, 0.2]}
        nb.probe(BIND, "smoothing")
        part2.test_label_smoothing_loss(nb, given)
        nb.probe(BIND, "smoothing_over_k_minus_one")
        with pytest.raises(CheckFailed, match="expected"):
            part2.test_label_smoothing_loss(nb, given)
    finally:
        live.shutdown()
