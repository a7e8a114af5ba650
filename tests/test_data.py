"""The data layer: real on-disk formats, synthetic stand-ins, and the kernel's view,
which never holds a held-out label."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from autograder import data
from autograder.data import emnist, faces, fashionmnist, gtsrb, landmarks, stl10, svhn
from autograder.data.context import DataContext, open_data, synthetic_source
from autograder.errors import UsageError

from .conftest import run_cli

ALL = sorted(data.DATASETS)


@pytest.fixture(scope="module")
def source() -> Path:
    return synthetic_source(ALL)


def test_synthetic_gtsrb_reads_with_torchvision(source: Path):
    train = torchvision.datasets.GTSRB(source, split="train")
    test = torchvision.datasets.GTSRB(source, split="test")
    assert sorted({label for _, label in train._samples}) == list(range(gtsrb.CLASSES))
    image, label = test[0]
    assert image.mode == "RGB" and 0 <= label < gtsrb.CLASSES
    with gtsrb.labels_file(source).open(encoding="utf-8") as handle:
        assert next(handle).strip() == ";".join(gtsrb.HEADER)


def test_synthetic_stl10_reads_as_torchvision_reads_the_binary_files(source: Path):
    """torchvision's STL10 refuses files whose MD5 is not the real one's, so its own reader
    is called on the stand-in: the same images, and labels 1-10 on disk (0-9 once read)."""
    reader = object.__new__(torchvision.datasets.STL10)
    reader.root = str(source)
    images, labels = reader._STL10__loadfile("train_X.bin", "train_y.bin")
    ours = stl10.read_images(source / "stl10_binary" / "train_X.bin")
    assert images.shape[1:] == (3, 96, 96) and np.array_equal(images, ours.transpose(0, 3, 1, 2))
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.array_equal(labels + 1, stl10.read_labels(source / "stl10_binary" / "train_y.bin"))
    names = (source / "stl10_binary" / "class_names.txt").read_text(encoding="utf-8").split()
    assert names == list(stl10.CLASSES)


def test_stl10s_view_writes_one_class_for_every_test_label(source: Path, tmp_path: Path):
    """The same class for all (torchvision's 0, so a notebook's own test loss runs), not the real ones."""
    stl10.stage(source, tmp_path)
    seen = stl10.read_labels(tmp_path / "stl10_binary" / "test_y.bin")
    real = stl10.heldout(source)
    assert len(seen) == len(real) and (seen == stl10.SHOWN).all() and real.min() == 1 and len(set(real)) == 10
    assert stl10.missing(tmp_path) == []
    (tmp_path / "stl10_binary" / "test_y.bin").write_bytes(bytes(3))
    assert stl10.missing(tmp_path) == [f"{tmp_path / 'stl10_binary' / 'test_y.bin'} holds 3 labels for "
                                       f"{len(seen)} images"]
    (tmp_path / "stl10_binary" / "train_X.bin").write_bytes(bytes(100))
    assert "should hold 96 x 96 colour images" in stl10.missing(tmp_path)[0]


def test_synthetic_faces_and_landmarks_have_the_course_formats(source: Path):
    stored = np.load(source / faces.FILE)
    assert stored.dtype == np.uint8 and stored.shape[1:] == (64, 64)
    with np.load(source / landmarks.FILE) as arrays:
        assert arrays["train_images"].shape[1:] == (224, 224, 3) and arrays["train_images"].dtype == np.uint8
        assert arrays["test_landmarks"].shape[1:] == (68, 2)
        assert arrays["train_landmarks"].min() >= 0 and arrays["train_landmarks"].max() < 224


def test_missing_pieces_are_named(tmp_path: Path):
    problems = data.missing(ALL, tmp_path)
    assert any("43 class folders" in p for p in problems)
    assert any("GT-final_test.csv" in p for p in problems)
    assert any(faces.FILE in p for p in problems) and any(landmarks.FILE in p for p in problems)
    np.save(tmp_path / faces.FILE, np.zeros((4, 32, 32), np.uint8))
    assert any("should be N x 64 x 64 uint8" in p for p in data.missing(["faces"], tmp_path))


def test_the_kernel_view_holds_no_held_out_labels(source: Path):
    context = DataContext(ALL, source, synthetic=True)
    try:
        view = context.view
        with gtsrb.labels_file(view).open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        names, labels = gtsrb.heldout(source)
        assert [r["Filename"] for r in rows] == names and {r["ClassId"] for r in rows} == {"0"}
        assert len(set(labels)) > 10  # the source has real labels; the view does not
        with np.load(view / landmarks.FILE) as seen:
            assert not seen["test_landmarks"].any()
            assert seen["train_landmarks"].any()
        held = faces.heldout(source)
        visible = np.load(view / faces.FILE)
        assert len(visible) + len(held) == len(np.load(source / faces.FILE))
        assert not any(np.array_equal(face, visible_face) for face in held[:5] for visible_face in visible)
        said = context.described()  # what a marker reads atop each executed notebook
        assert said.startswith("It read synthetic stand-ins for ") and "gtsrb's test ClassIds (all 0)" in said
        assert "faces's held-out faces" in said and "landmarks's test landmarks (all 0)" in said
        assert "weights's" not in said  # the course hands the weights out: nothing is withheld
    finally:
        context.close()
    assert not context.view.exists()


def test_a_view_that_hides_nothing_says_only_where_it_came_from(source: Path):
    context = DataContext(["weights"], source, synthetic=False)
    try:
        assert context.described() == "It read the marker's copy of weights."
    finally:
        context.close()


def test_trivial_baselines_fail_the_thresholds(source: Path):
    _, labels = gtsrb.heldout(source)
    assert np.bincount(labels).max() / len(labels) < 0.1  # majority class: far below 85%
    with np.load(source / landmarks.FILE) as arrays:
        mean = arrays["train_landmarks"].mean(axis=0)
        assert np.mean((arrays["test_landmarks"] - mean) ** 2) > 1000  # the mean landmarks: no credit


def test_a_run_needs_data_or_synthetic(tmp_path: Path):
    assert open_data([], data_dir=None, synthetic=False) is None
    with pytest.raises(UsageError, match="--data DIR .* or --synthetic"):
        open_data(["gtsrb"], data_dir=None, synthetic=False)
    with pytest.raises(UsageError, match="does not hold the datasets"):
        open_data(["gtsrb"], data_dir=tmp_path, synthetic=False)


def test_synthetic_data_is_generated_once(source: Path):
    marker = source / ".gtsrb.done"
    stamp = marker.stat().st_mtime_ns
    assert synthetic_source(ALL) == source and marker.stat().st_mtime_ns == stamp


def test_data_commands(tmp_path: Path):
    done = run_cli("data", "synth", "faces", tmp_path)
    assert done.returncode == 0 and (tmp_path / faces.FILE).is_file()
    assert run_cli("data", "check", tmp_path, "--assignment", "ece4179-2023").returncode == 1
    done = run_cli("data", "synth", "nothing", tmp_path)
    assert done.returncode == 2 and "nothing" in done.stderr


def test_synthetic_fashionmnist_reads_with_torchvision(source: Path):
    train = torchvision.datasets.FashionMNIST(source, train=True, download=False)
    test = torchvision.datasets.FashionMNIST(source, train=False, download=False)
    assert train.data.shape[1:] == (28, 28) and train.data.dtype == torch.uint8
    assert sorted(set(train.targets.tolist())) == list(range(10)) and len(test) == len(fashionmnist.heldout(source))


def test_synthetic_svhn_has_the_mat_layout_and_torchvision_refuses_it(source: Path):
    from scipy.io import loadmat

    arrays = loadmat(svhn.root(source) / svhn.FILES["train"])
    assert arrays["X"].shape[:3] == (32, 32, 3) and arrays["X"].dtype == np.uint8
    assert arrays["y"].shape == (arrays["X"].shape[3], 1) and set(np.unique(arrays["y"])) == set(range(1, 11))
    with pytest.raises(RuntimeError, match="not found or corrupted"):  # its MD5 check: notebooks use loadmat
        torchvision.datasets.SVHN(svhn.root(source), split="train", download=False)


def test_the_view_of_fashionmnist_and_svhn_holds_no_test_labels(source: Path):
    context = DataContext(["fashionmnist", "svhn"], source, synthetic=True)
    try:
        seen = fashionmnist.read_idx(fashionmnist.raw_dir(context.view) / fashionmnist.FILES[("test", "labels")])
        assert not seen.any() and len(set(fashionmnist.heldout(source))) == 10
        train = fashionmnist.FILES[("train", "labels")]
        assert (fashionmnist.raw_dir(context.view) / train).read_bytes() == (
            fashionmnist.raw_dir(source) / train).read_bytes()
        images, digits = svhn.read_split(svhn.root(context.view) / svhn.FILES["test"])
        assert set(digits) == {0} and len(set(svhn.heldout(source))) == 10
        assert np.array_equal(images, svhn.read_split(svhn.root(source) / svhn.FILES["test"])[0])
        for labels in (fashionmnist.heldout(source), svhn.heldout(source)):
            assert np.bincount(labels).max() / len(labels) < 0.15  # the majority class is far below 85%
        assert context.described().endswith("without fashionmnist's test labels (all 0) and svhn's test labels "
                                            "(all 10), so whatever it printed about held-out data is not the grade.")
    finally:
        context.close()


def test_broken_fashionmnist_and_svhn_files_are_named(tmp_path: Path):
    data.synth("fashionmnist", tmp_path, scale="small")
    path = fashionmnist.raw_dir(tmp_path) / fashionmnist.FILES[("train", "images")]
    path.write_bytes(path.read_bytes()[:1000])
    assert any("the header says (6000, 28, 28)" in p for p in data.missing(["fashionmnist"], tmp_path))
    (svhn.root(tmp_path)).mkdir()
    (svhn.root(tmp_path) / svhn.FILES["train"]).write_bytes(b"not a mat file")
    problems = data.missing(["svhn"], tmp_path)
    assert any("train_32x32.mat is not a readable .mat file" in p for p in problems)
    assert any("test_32x32.mat is missing" in p for p in problems)


_TOY_DATASET = '''
NAME = "toy"
WITHHELD = "WITHHELD_TEXT"
def synth(folder, *, scale, seed):
    (folder / "toy.txt").write_text("1 2 3")
    return [folder / "toy.txt"]
def missing(folder):
    return [] if (folder / "toy.txt").is_file() else [f"{folder / 'toy.txt'} is missing"]
def stage(source, view):
    (view / "toy.txt").write_text("0 0 0")
HELDOUT_CODE
'''


def _toy(withheld: str, heldout: str) -> str:
    return _TOY_DATASET.replace("WITHHELD_TEXT", withheld).replace("HELDOUT_CODE", heldout)


def _package(folder: Path, name: str, module: str) -> list[str]:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "toy.py").write_text(module)
    (folder / name / "files.py").write_text("HELPER = True\n")  # a helper module, not a dataset
    return [str(folder / name)]


def test_a_dataset_is_one_module_found_by_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    heldout = "def heldout(source):\n    return (source / 'toy.txt').read_text()"
    paths = _package(tmp_path, "toydata", _toy("labels (all 0)", heldout))
    found = data.registry(paths, "toydata")
    assert list(found) == ["toy"] and found["toy"].NAME == "toy"
    broken = _package(tmp_path, "brokendata", _toy("labels (all 0)", ""))
    with pytest.raises(ImportError, match="brokendata.toy is not a dataset module: it lacks heldout"):
        data.registry(broken, "brokendata")
    assert sorted(data.DATASETS) == ALL == ["emnist", "faces", "fashionmnist", "gtsrb", "landmarks", "stl10", "svhn",
                                            "weights"]
    assert all(name == module.NAME for name, module in data.DATASETS.items())


def test_a_rubric_naming_an_unknown_dataset_is_refused_with_the_known_ones():
    from autograder.course.rubric import parse_rubric
    from autograder.errors import RubricError

    def rubric(datasets: list[str]) -> dict:
        return {"assignment": "a", "title": "A", "total_points": 1,
                "notebooks": [{"file": "a.ipynb", "questions": ["1"], "datasets": datasets}],
                "questions": [{"id": "1", "title": "q", "points": 1,
                               "items": [{"id": "1", "title": "i", "points": 1}]}]}

    with pytest.raises(RubricError, match="reads unknown dataset 'mnist'; known: emnist, faces, fashionmnist, gtsrb"):
        parse_rubric(rubric(["gtsrb", "mnist"]), "rubric.yaml")
    assert parse_rubric(rubric(["svhn"]), "rubric.yaml").notebooks[0].datasets == ["svhn"]


def test_graders_sharing_the_cache_generate_a_dataset_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two graders needing the same stand-in at once: one makes it, the other waits for it
    (it never replaces files the first one's grading is reading)."""
    import threading
    import time

    from autograder.data import context

    monkeypatch.setenv(context.CACHE_ENV, str(tmp_path / "cache"))
    made: list[int] = []

    def slow_synth(name: str, folder: Path, *, scale: str) -> list[Path]:
        made.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the second grader to arrive while it is made
        (folder / "images").mkdir()
        (folder / "images" / "0.png").write_bytes(b"png")
        return [folder / "images"]

    monkeypatch.setattr(context, "synth", slow_synth)
    found: list[Path] = []
    graders = [threading.Thread(target=lambda: found.append(synthetic_source(["gtsrb"]))) for _ in range(2)]
    for grader in graders:
        grader.start()
    for grader in graders:
        grader.join(timeout=30)
    assert len(made) == 1 and len(found) == 2 and found[0] == found[1]
    assert (found[0] / "images" / "0.png").read_bytes() == b"png"


def test_a_declared_stl10_split_withholds_its_test_labels_wherever_they_are(source: Path, tmp_path: Path):
    """ece4179-2021-a3's split: 8,000 / 2,000 / 3,000 of the 13,000 labelled images (train_X
    then test_X); the stand-in's 650 are split in the same proportions."""
    from autograder.data.stl10 import SplitDataset, SplitSpec

    in_order = SplitDataset(SplitSpec(name="a3", sizes={"train": 8000, "val": 2000, "test": 3000}), owner="t")
    indices = in_order.indices(source)
    assert [len(indices[s]) for s in ("train", "val", "test")] == [400, 100, 150]
    assert indices["test"].tolist() == list(range(500, 650))
    in_order.stage(source, tmp_path / "ordered")
    train_seen = stl10.read_labels(tmp_path / "ordered" / "stl10_binary" / "train_y.bin")
    test_seen = stl10.read_labels(tmp_path / "ordered" / "stl10_binary" / "test_y.bin")
    test_real = stl10.heldout(source)
    assert np.array_equal(train_seen, stl10.read_labels(source / "stl10_binary" / "train_y.bin"))
    assert np.array_equal(test_seen[:250], test_real[:250]) and (test_seen[250:] == stl10.SHOWN).all()
    assert np.array_equal(in_order.heldout(source)["test"], test_real[250:].astype(np.int64) - 1)

    shuffled = SplitDataset(SplitSpec(name="a3s", sizes={"train": 8000, "val": 2000, "test": 3000}, seed=4179),
                            owner="t")
    shuffled.stage(source, tmp_path / "shuffled")
    seen = np.concatenate([stl10.read_labels(tmp_path / "shuffled" / "stl10_binary" / name)
                           for name in ("train_y.bin", "test_y.bin")])
    withheld = shuffled.indices(source)["test"]
    assert len(withheld) == 150 and (seen[withheld] == stl10.SHOWN).all() and (withheld < 250).any()
    assert sorted(shuffled.labels(source, "val").tolist()) != [] and shuffled.labels(source, "val").max() <= 9


def test_a_declared_stl10_split_that_asks_too_much_is_refused():
    from pydantic import ValidationError

    from autograder.data.stl10 import SplitSpec

    with pytest.raises(ValidationError, match="the splits hold 14,000 images; STL10 has 13,000 labelled"):
        SplitSpec(name="a3", sizes={"train": 9000, "val": 2000, "test": 3000})
    with pytest.raises(ValidationError):
        SplitSpec(name="a3", sizes={"train": 8000}, withheld=["holdout"])


def test_synthetic_emnist_letters_read_as_torchvision_and_the_emnist_package_read_them(source: Path):
    """Both layouts hold the same arrays: torchvision's EMNIST class reads the raw files, and
    the zip holds the gzipped IDX files where the emnist package looks for them. Images are
    stored transposed, as NIST stores them; labels 1-26."""
    import gzip
    import zipfile

    letters = torchvision.datasets.EMNIST(str(source), split="letters", train=True)
    ours = emnist.read_raw(source)
    assert np.array_equal(letters.data.numpy(), ours[("train", "images")])
    assert sorted(set(letters.targets.tolist())) == list(range(1, 27))
    assert letters.classes[1:] == list("abcdefghijklmnopqrstuvwxyz")
    with zipfile.ZipFile(source / emnist.ZIP) as bundle:  # as the package's _extract_data reads it
        raw = gzip.decompress(bundle.read("gzip/emnist-letters-test-labels-idx1-ubyte.gz"))
    assert np.array_equal(np.frombuffer(raw, dtype=np.uint8, offset=8), emnist.heldout(source))
    assert all(np.array_equal(a, b) for a, b in zip(emnist.read_zip(source).values(), ours.values()))
    upright = emnist.draw(np.array([9]), np.random.default_rng(3))[0]  # an "i": a tall, narrow stroke
    assert (upright > 100).any(axis=1).sum() > (upright > 100).any(axis=0).sum()


def test_emnists_view_writes_one_letter_for_every_test_label_in_either_layout(source: Path, tmp_path: Path):
    """The letter a for all (``labels - 1`` is a code, so a notebook's own test loss runs), not the real ones."""
    emnist.stage(source, tmp_path)
    assert emnist.missing(tmp_path) == []
    for read in (emnist.read_raw, emnist.read_zip):
        seen = read(tmp_path)
        assert (seen[("test", "labels")] == emnist.SHOWN).all() and seen[("train", "labels")].min() == 1
        assert np.array_equal(seen[("test", "images")], emnist.read_raw(source)[("test", "images")])
    assert emnist.heldout(source).min() >= 1 and len(set(emnist.heldout(source))) == 26


def test_emnist_needs_one_layout_and_names_what_is_wrong(source: Path, tmp_path: Path):
    assert "torchvision's EMNIST files" in emnist.missing(tmp_path)[0]
    (tmp_path / emnist.ZIP).parent.mkdir()
    shutil.copy2(source / emnist.ZIP, tmp_path / emnist.ZIP)  # the package's zip alone will do
    assert emnist.missing(tmp_path) == [] and len(emnist.heldout(tmp_path)) == len(emnist.heldout(source))
    (tmp_path / emnist.ZIP).write_bytes(b"not a zip")
    assert "is not a readable zip" in emnist.missing(tmp_path)[0]
    emnist.raw_dir(tmp_path).mkdir(parents=True)
    for usage, matrix in (("train", "images"), ("train", "labels"), ("test", "images")):
        shutil.copy2(emnist.raw_dir(source) / emnist.file_name(usage, matrix), emnist.raw_dir(tmp_path))
    problems = emnist.missing(tmp_path)
    assert any("torchvision layout" in p and "emnist-letters-test-labels-idx1-ubyte" in p for p in problems)


def test_the_courses_download_calls_are_served_from_the_view_at_any_root(source: Path, tmp_path: Path):
    """A real kernel with the set-up: torchvision's STL10, EMNIST, GTSRB and FashionMNIST with
    ``download=True`` and the ``emnist`` package read the view's files, whatever root the
    notebook chose; a download the grader serves nothing for fails with the reason."""
    import json

    from autograder.grading import kernel_setup

    from .conftest import notebook, start_live

    context = DataContext(["emnist", "fashionmnist", "gtsrb", "stl10"], source, synthetic=True)
    cells = (
        "import json, torchvision\nfrom emnist import extract_training_samples",
        "stl = torchvision.datasets.STL10('./data', split='train', download=True)\n"
        "stl_test = torchvision.datasets.STL10('./data', split='test', download=True)",
        "letters = torchvision.datasets.EMNIST('datasets', split='letters', train=True, download=True)\n"
        "x_letters, y_letters = extract_training_samples('letters')",
        "signs = torchvision.datasets.GTSRB('./data', split='train', download=True)\n"
        "signs_test = torchvision.datasets.GTSRB('./data', split='test', download=True)",
        "fashion = torchvision.datasets.FashionMNIST('fm', train=False, download=True)",
        "print(json.dumps({'stl': [len(stl), int(stl.data[0].sum()), sorted(set(stl_test.labels.tolist()))],\n"
        "    'letters': [len(letters), int(letters.data[0].sum()), x_letters.shape[0], int(x_letters[0].sum())],\n"
        "    'signs': [len(signs), len(signs_test), sorted({label for _, label in signs_test._samples})],\n"
        "    'fashion': [len(fashion), int(fashion.targets.sum())]}))",
        # torchvision's one use of torch._dynamo is lent a stand-in until roi_align runs: the real module then
        "import sys, torch\nlazy = 'torch._dynamo' not in sys.modules\n"
        "pooled = torchvision.ops.roi_align(torch.ones(1, 1, 4, 4), [torch.tensor([[0.0, 0.0, 3.0, 3.0]])], 2)\n"
        "supported = sys.modules['torchvision.ops.roi_align'].is_compile_supported('cpu')\n"
        "real = hasattr(sys.modules['torch._dynamo.utils'], 'counters')\n"
        "print(json.dumps([lazy, list(pooled.shape), supported, real]))",
        "torchvision.datasets.CIFAR10('./data', download=True)",
    )
    live = start_live(notebook(*cells), tmp_path, prelude=kernel_setup.install_source(context.downloads()),
                      cell_timeout=120, total_timeout=400)
    try:
        assert [c.status for c in live.run.cells] == ["ok"] * 7 + ["error"], [c.evalue for c in live.run.cells]
        assert "cannot be downloaded in grading (the network is off)" in live.run.cells[7].evalue
        found = json.loads(live.nb.cells[5].outputs[0]["text"])
        assert json.loads(live.nb.cells[6].outputs[0]["text"]) == [True, [1, 1, 2, 2], True, True]
    finally:
        live.shutdown()
        context.close()
    images = stl10.read_images(stl10.folder_of(source) / stl10.FILES[("train", "images")])
    test_count = len(stl10.read_labels(stl10.folder_of(source) / stl10.FILES[("test", "labels")]))
    # every test label the view holds is 1, airplane, which torchvision reads as 0
    assert found["stl"] == [len(images), int(images[0].sum()), [0]] and test_count > 0
    letters = emnist.read(source)[("train", "images")]
    assert found["letters"] == [len(letters), int(letters[0].sum()), len(letters), int(letters[0].sum())]
    assert found["signs"][0] > 0 and found["signs"][1:] == [len(list(gtsrb.test_dir(source).glob("*.ppm"))), [0]]
    assert found["fashion"] == [len(fashionmnist.heldout(source)), 0]


def test_pretrained_weights_of_torchvisions_enums_and_hugging_face_are_served_from_the_weights_folder(
        tmp_path: Path):
    """A weight enum (``squeezenet1_1(weights="IMAGENET1K_V1")``) loads the file of that hub
    name a marker put in ``weights/``, and ``from_pretrained("<owner>/<name>")`` the folder
    ``weights/hf/<owner>/<name>/``, in a real kernel with the set-up; nothing is fetched, and a
    repository not served fails at once with the hub's own words."""
    import json

    from transformers import ViTConfig, ViTModel

    from autograder.data import weights
    from autograder.grading import kernel_setup

    from .conftest import notebook, start_live

    view = tmp_path / "view"
    (view / weights.FOLDER).mkdir(parents=True)
    torch.manual_seed(5)
    state = torchvision.models.squeezenet1_1().state_dict()
    torch.save(state, view / weights.FOLDER / "squeezenet1_1-b8a52dc0.pth")
    repo = "google/vit-base-patch16-224-in21k"
    vit = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             image_size=32, patch_size=16))
    vit.save_pretrained(view / weights.FOLDER / weights.HF_FOLDER / repo)
    served = data.downloads(["weights"], view)
    (tmp_path / "work").mkdir()
    assert served["torch.hub:squeezenet1_1-b8a52dc0.pth"] == str(view / weights.FOLDER / "squeezenet1_1-b8a52dc0.pth")
    assert served[f"huggingface:{repo}"] == str(view / weights.FOLDER / weights.HF_FOLDER / repo)
    stored = weights.load_state(view, repo)  # the hub's own tensor names, which the library renames on loading
    assert sorted(float(t.sum()) for t in stored.values()) == sorted(float(t.sum()) for t in vit.state_dict().values())
    live = start_live(notebook("import json, time, torch, torchvision\nfrom transformers import ViTModel",
                               "net = torchvision.models.squeezenet1_1(weights='IMAGENET1K_V1')\n"
                               "print(json.dumps(float(net.features[0].weight.sum())))",
                               f"vit = ViTModel.from_pretrained({repo!r})\n"
                               "print(json.dumps(float(vit.embeddings.patch_embeddings.projection.weight.sum())))",
                               "start = time.monotonic()\n"
                               "try:\n    ViTModel.from_pretrained('google/vit-large-patch16-224')\n"
                               "except OSError as error:\n"
                               "    print(json.dumps([str(error), time.monotonic() - start]))"),
                      tmp_path / "work", prelude=kernel_setup.install_source(served), cell_timeout=120)
    try:
        assert [c.status for c in live.run.cells] == ["ok"] * 4, [c.evalue for c in live.run.cells]
        printed = [json.loads(next(o["text"] for o in cell.outputs if o.get("name") == "stdout").splitlines()[-1])
                   for cell in live.nb.cells[1:]]
    finally:
        live.shutdown()
    got, vit_sum, (refused, waited) = printed
    assert vit_sum == pytest.approx(float(vit.embeddings.patch_embeddings.projection.weight.detach().sum()), rel=1e-6)
    assert "couldn't find them in the cached files" in refused and waited < 30
    assert got == pytest.approx(float(state["features.0.weight"].sum()), rel=1e-6)
