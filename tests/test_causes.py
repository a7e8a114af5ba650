"""Root causes of failed cells, and the grading kernel's set-up that keeps the courses'
import cells, magics and pip lines from taking a notebook down."""

from __future__ import annotations

from pathlib import Path

from autograder.grading import kernel_setup
from autograder.grading.causes import local_modules, module_available, root_causes
from autograder.grading.execute import CellRun, NotebookRun
from autograder.grading.record import CellStatus

from .conftest import notebook, start_live


def run_of(*cells: tuple[str, str, str]) -> NotebookRun:
    """A notebook run from (source, error name, error value) per code cell; no error name: it ran."""
    records = [CellRun(number=n, status=CellStatus.ERROR if ename else CellStatus.OK, source=source, ename=ename,
                       evalue=evalue) for n, (source, ename, evalue) in enumerate(cells, start=1)]
    return NotebookRun(name="student.ipynb", cells=records)


def sentences(run: NotebookRun, local: set[str] | None = None) -> list[str]:
    return [cause.sentence() for cause in root_causes(run, module_available(local or set()))]


def test_one_missing_module_is_one_cause_with_its_followers():
    run = run_of(
        ("import numpy as np\nimport torchsummaryX\nfrom torchsummaryX import summary\nimport torch", "", ""),
        ("net = torch.nn.Linear(2, 2)", "", ""),
        ("summary(net, (1, 2))", "ModuleNotFoundError", "No module named 'torchsummaryX' (not in the grading ...)"),
        ("table = torchsummaryX.summary(net)", "ModuleNotFoundError", "No module named 'torchsummaryX'"),
        ("print(table)", "NameError", "name 'table' is not defined"),
        ("raise ValueError('its own')", "ValueError", "its own"),
    )
    assert sentences(run) == ["code cell 1 imports `torchsummaryX`, which is not in the grading environment nor a "
                              "file of the submission; 3 later cells failed because of it"]
    assert [c.note for c in run.cells] == ["", "", *["because of code cell 1"] * 3, ""]


def test_a_module_of_the_submission_is_no_cause_and_an_import_that_ran_is_none():
    run = run_of(("import helpers\nimport numpy", "", ""), ("helpers.go()", "", ""))
    assert sentences(run, local={"helpers"}) == []
    assert sentences(run) == ["code cell 1 imports `helpers`, which is not in the grading environment nor a file of "
                              "the submission"]


def test_gpu_checkpoint_and_names_defined_later_or_nowhere():
    run = run_of(
        ("import torch\nmodel = Net().cuda()", "RuntimeError", "Found no NVIDIA driver on your system."),
        ("out = model(x)", "NameError", "name 'model' is not defined"),
        ("state = torch.load('models/ae_300.pt')", "FileNotFoundError",
         "[Errno 2] No such file or directory: 'models/ae_300.pt'"),
        ("print(results)", "NameError", "name 'results' is not defined"),
        ("results = 1", "", ""),
        ("print(nowhere)", "NameError", "name 'nowhere' is not defined"),
        ("other = torch.zeros(2, device='cuda')", "RuntimeError", "Torch not compiled with CUDA enabled"),
    )
    assert sentences(run) == [
        "code cell 1 needs a GPU: `.cuda()` (this grading has none); 2 later cells failed because of it",
        "code cell 3 reads `models/ae_300.pt`, which the submission does not contain",
        "code cell 4 uses `results`, which only a later cell (code cell 5) defines",
        "code cell 6 uses `nowhere`, which no cell of the notebook defines",
    ]
    assert run.cells[1].note == run.cells[6].note == "because of code cell 1"


def test_a_failed_definition_carries_its_followers():
    run = run_of(
        ("data = load()\nmodel = build(data)", "ValueError", "bad shape"),
        ("train(model)", "NameError", "name 'model' is not defined"),
        ("evaluate(model)", "NameError", "name 'model' is not defined"),
    )
    assert sentences(run) == ["code cell 1 failed with ValueError: bad shape; 2 later cells failed because of it"]


def test_local_modules_are_the_folders_python_files_and_packages(tmp_path: Path):
    (tmp_path / "models.py").write_text("")
    (tmp_path / "utils").mkdir()
    assert local_modules(tmp_path) == {"models", "utils"}


def test_the_courses_import_cells_magics_and_pip_lines_run(tmp_path: Path):
    """A real kernel with the set-up: one import cell as the courses write them goes on past
    a missing module, whose names raise a clear error where used; formatters, TensorBoard
    and pip are harmless."""
    cell = ("%load_ext lab_black\n!pip install torchviz\n%pip install -q nosuchpackage\nimport numpy as np\n"
            "import nosuchmodule\nfrom nosuchpackage.sub import thing as other\nimport torch\nseed = 211")
    board = "%load_ext tensorboard\n%tensorboard --logdir logs\nvalue = int(np.arange(3).sum())"
    live = start_live(notebook(cell, board, "nosuchmodule.run()", "y = other(3)"), tmp_path,
                      prelude=kernel_setup.install_source())
    try:
        assert [(c.status, c.ename) for c in live.run.cells] == [
            ("ok", ""), ("ok", ""), ("error", "ModuleNotFoundError"), ("error", "ModuleNotFoundError")]
        assert "`other`, which its import binds" in live.run.cells[3].evalue
        said = "".join(o.get("text", "") for c in live.nb.cells for o in c.get("outputs", []))
        assert "already installed: torchviz" in said
        assert "not in the grading environment (pip cannot install here, the network is off): nosuchpackage" in said
        assert "TensorBoard is not started" in said and "already loaded" not in said
        assert sentences(live.run)[0].startswith("code cell 1 imports `nosuchmodule`")
    finally:
        live.shutdown()
