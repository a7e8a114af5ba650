"""The probe channel on a real kernel: what a check can ask, and how each failure reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from autograder.checking import version_for
from autograder.errors import (
    GraderError,
    KernelDied,
    NotCallable,
    NotDefined,
    ProbeTimeout,
    StudentRaised,
)
from autograder.grading.channel import KernelChannel
from autograder.grading.wire import Opaque

from .conftest import notebook, start_live

CELLS = [
    "import numpy as np\nimport time",
    "def scale(x, by=2):\n    print('scaling')\n    return np.asarray(x) * by",
    "def broken(x):\n    return helper(x)\n\ndef helper(x):\n    raise ValueError(f'bad input {x}')",
    "class Model:\n    weight = np.arange(3.0)\nmodel = Model()\ncount = 3",
    "def slow():\n    time.sleep(60)",
    "def gen():\n    yield 1",
    "def uses_missing():\n    return undefined_helper()",
    "def predict(x):\n    return x +",  # a syntax error: predict is never defined
]


@pytest.fixture(scope="module")
def channel():
    live = start_live(notebook(*CELLS), Path(tempfile.mkdtemp()), total_timeout=60, name="probe.ipynb")
    yield KernelChannel(live, timeout=10)
    live.shutdown()


def test_call_with_arrays_and_keywords(channel):
    result = channel.call("scale", np.arange(4.0), by=3)
    assert result.tolist() == [0, 3, 6, 9]
    assert channel.printed == "scaling\n"


def test_read_variables_and_attributes(channel):
    assert channel.get("count") == 3
    assert channel.get("model.weight").tolist() == [0, 1, 2]
    assert channel.get("model") == Opaque("__main__.Model")


def test_describe(channel):
    assert channel.describe("scale") == {"defined": True, "type": "builtins.function", "callable": True}
    assert channel.describe("nothing") == {"defined": False}


def test_a_student_exception_carries_the_student_traceback(channel):
    with pytest.raises(StudentRaised) as caught:
        channel.call("broken", 5)
    assert str(caught.value) == "`broken` raised ValueError: bad input 5"
    text = "\n".join(caught.value.traceback)
    assert "in helper" in text and "autograder" not in text


def test_an_undefined_name_points_at_the_failing_cell_that_defines_it(channel):
    with pytest.raises(NotDefined) as caught:
        channel.call("predict", 1)
    assert "`predict` is not defined in probe.ipynb" in str(caught.value)
    assert "it is defined in code cell 8, which failed with SyntaxError" in str(caught.value)


def test_a_name_no_cell_defines_is_not_blamed_on_a_failed_cell(channel):
    with pytest.raises(NotDefined) as caught:
        channel.get("vgg11_table")
    assert str(caught.value) == "`vgg11_table` is not defined in probe.ipynb; no cell of the notebook defines it"
    with pytest.raises(NotDefined, match=r"no cell of the notebook defines it \(is `scale` meant\?\)"):
        channel.call("scales", 1)


def test_a_value_is_not_a_function(channel):
    with pytest.raises(NotCallable, match="`count` is a int, not a function"):
        channel.call("count")


def test_unencodable_results_arrive_as_opaque(channel):
    assert isinstance(channel.call("gen"), Opaque)


def test_a_probe_runs_in_the_student_namespace(channel):
    assert channel.probe("def probe(x):\n    return scale(x, by=count)", [1.0, 2.0]).tolist() == [3, 6]


def test_a_probe_naming_a_missing_variable_reads_as_not_defined(channel):
    with pytest.raises(NotDefined, match="`w_trained` is not defined"):
        channel.probe("def probe():\n    return w_trained")


def test_a_probe_whose_own_local_hides_a_student_name_is_the_graders_failure(channel):
    """``model = model`` in a probe binds a local that hides the student's ``model``: the
    probe's bug (UnboundLocalError), never "`model` is not defined" blamed on the student."""
    with pytest.raises(GraderError, match="the probe failed"):
        channel.probe("def probe():\n    model = model\n    return model.weight")


def test_a_probe_raising_in_the_students_function_names_that_function(channel):
    """The innermost of the notebook's own frames is named (not the check's code, nor a
    library's); a probe raising in its own code stays the check's code on the notebook's objects."""
    with pytest.raises(StudentRaised) as caught:
        channel.probe("def probe():\n    import numpy\n    return broken(numpy.zeros(2))")
    assert str(caught.value).startswith("your `helper` (line 5 of its cell), called by the check, raised ValueError")
    with pytest.raises(StudentRaised, match="^the check's code, run on your notebook's objects, raised TypeError"):
        channel.probe("def probe():\n    return len(count)")


def test_a_missing_name_inside_student_code_is_the_student_error(channel):
    with pytest.raises(StudentRaised, match="NameError"):
        channel.call("uses_missing")


def test_a_slow_call_times_out_and_the_kernel_stays_usable(channel):
    with pytest.raises(ProbeTimeout, match="`slow` did not finish within 1 s"):
        channel.call("slow", timeout=1)
    assert channel.get("count") == 3


def test_a_dead_kernel_is_reported(tmp_path: Path):
    live = start_live(notebook("import os\ndef crash():\n    os._exit(1)"), tmp_path, name="crash.ipynb")
    channel = KernelChannel(live, timeout=5)
    try:
        with pytest.raises(KernelDied):
            channel.call("crash")
        with pytest.raises(KernelDied):
            channel.get("os")
    finally:
        live.shutdown()


def test_a_function_redefined_after_its_partner_is_paired_with_the_version_it_was_used_with(tmp_path: Path):
    cells = [
        "import numpy as np",
        "def features(x):\n    return np.stack([x, x**2], axis=1)",
        "w_best = np.ones(2)",
        "%matplotlib inline\ndef features(x):\n    return np.stack([x, x**2, x**3], axis=1)",  # an exploration
        "def scale(x):\n    return 2 * x\ny = scale(3)",  # defines and computes: not run again
        "def scale(x):\n    return 3 * x",
    ]
    live = start_live(notebook(*cells), tmp_path, name="pairs.ipynb")
    try:
        channel = KernelChannel(live, timeout=10)
        version, note = version_for(channel, "features", "w_best")
        assert version is not None and version.number == 2
        assert note == ("`features` is redefined in code cell 4, after `w_best` was set in code cell 3: graded with "
                        "the `features` of code cell 2, which `w_best` was computed with")
        assert channel.call_as_defined("features", version, np.array([1.0, 2.0])).shape == (2, 2)
        assert channel.call("features", np.array([1.0, 2.0])).shape == (2, 3)  # the live namespace is unchanged
        version, note = version_for(channel, "scale", "y")
        assert version is None and note == "`scale` is redefined in code cell 6, after `y` was set in code cell 5"
        assert version_for(channel, "features", "nothing") == (None, "")
        assert version_for(channel, "scale", "w_best") == (None, "")  # defined only after: not a redefinition
        with pytest.raises(GraderError, match="code cell 5 of pairs.ipynb does more than define names"):
            channel.call_as_defined("scale", live.run.cells[4], 1)
    finally:
        live.shutdown()
