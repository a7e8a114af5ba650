"""Zips built from an assignment: the student bundle, and (see ``gradescope``) the
Gradescope autograder.

The student bundle holds the templates, the public data, the grader's source and the
assignment's public side (``redact``): students run the public checks on their own
machine, on synthetic stand-ins of the datasets, without Docker. Nothing in it is
hidden: no hidden check, no expected value of a hidden item, no reference solution, no
held-out seed or label.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import yaml

from ..errors import AssignmentError
from .assignment import Assignment, project_home
from .redact import fresh_seeds, public_checks, public_rubric

ASSIGNMENT_DIR = "assignment"  # the rubric folder, inside a bundle
GRADER_DIR = "grader"  # the grader's source, installable with pip
_GRADER_FILES = ("pyproject.toml", "README.md", "autograder")


def copy_grader(target: Path) -> Path:
    """The grader's source (package, pyproject, README), to install with ``pip install``."""
    home = project_home()
    target.mkdir(parents=True, exist_ok=True)
    for name in _GRADER_FILES:
        source = home / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)
    return target


def copy_assignment(assignment: Assignment, target: Path, *, public: bool) -> Path:
    """The rubric folder with the public data beside it (``data.public`` rewritten to
    ``public-data``); ``public`` keeps only what students may see."""
    rubric = assignment.rubric
    hidden = {item.id for _, item in rubric.items() if item.visibility == "hidden"}
    raw = yaml.safe_load(assignment.rubric_path.read_text(encoding="utf-8"))
    target.mkdir(parents=True, exist_ok=True)
    if rubric.data is not None and assignment.public_data_dir is not None:
        if not assignment.public_data_dir.is_dir():
            raise AssignmentError(f"{assignment.id}: public data folder {assignment.public_data_dir} does not exist")
        shutil.copytree(assignment.public_data_dir, target / "public-data")
        raw["data"] = {**raw["data"], "public": "public-data"}
    (target / "checks").mkdir()
    for check in sorted(assignment.checks_dir.glob("*.py")):
        source = check.read_text(encoding="utf-8")
        kept = public_checks(source, hidden) if public and check.name.startswith("check_") else source
        if kept is not None:
            (target / "checks" / check.name).write_text(kept, encoding="utf-8")
    for helper in sorted(assignment.folder.glob("*.py")):
        source = helper.read_text(encoding="utf-8")
        (target / helper.name).write_text(fresh_seeds(source) if public else source, encoding="utf-8")
    if public:
        raw = public_rubric(raw, rubric)
    header = f"# {assignment.id}: {'the public side of the rubric' if public else 'the rubric'}, as bundled\n"
    (target / "rubric.yaml").write_text(header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True),
                                        encoding="utf-8")
    return target


def zip_folder(folder: Path, path: Path, *, executable: tuple[str, ...] = ()) -> Path:
    """Zip ``folder``'s contents (its name not included), atomically; ``executable`` files get mode 755."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = file.relative_to(folder).as_posix()
            info = zipfile.ZipInfo(relative, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if relative in executable else 0o644) << 16
            archive.writestr(info, file.read_bytes())
    os.replace(temporary, path)
    return path


HOW_TO = """# {title}: checking your work before you submit

This folder holds the notebooks to complete ({notebooks}), their data, and the course's
grader with the *public* checks of the rubric. Hidden items are marked by the course's
markers only; the check below tells you which items those are.

## Once

```sh
python3 -m venv .venv && .venv/bin/pip install ./{grader}
```

(On Colab: `!pip install ./{grader}`.) The grader needs PyTorch; pip keeps one that is
already installed where you install it:

- where PyTorch is already there (Colab, a course environment, a conda env): install
  into that environment (`pip install ./{grader}` there), or make the venv see it:
  `python3 -m venv --system-site-packages .venv`;
- for the CPU-only build (about 1 GB instead of several, enough for the self-check),
  install it first: `.venv/bin/pip install torch torchvision --index-url
  https://download.pytorch.org/whl/cpu`, then `.venv/bin/pip install ./{grader}`.

## Each time

```sh
.venv/bin/autograder check {assignment} {example}   # one notebook
.venv/bin/autograder check {assignment} my_submission.zip     # the zip you are about to submit
```

In a notebook cell: `!autograder check {assignment} {example}`.

The check runs your notebook from the top in a fresh kernel and reports, in this order:

1. naming and packaging problems (notebook names, the zip's name, file types, outputs
   not saved);
2. each public item: points, and for trained models the value the grader measured
   against the threshold (for example `accuracy 0.83: needs >= 0.85 for any credit`);
3. what will be marked by hand, and what is checked by the markers only.

It is fast by default: cells are stopped after {cell_timeout:g} seconds (and it says
which), datasets are small synthetic stand-ins, and the notebooks run with the small
sizes of the rubric's `synthetic:` section. Nothing is downloaded and Docker is not
needed. The command exits with a non-zero status while a public item is not yet earned.

The points shown are the public automatic items only. Your grade also depends on
hidden checks, on the real datasets, and on the items marked by hand.
"""


def student_bundle(assignment: Assignment, path: Path) -> Path:
    """``path``: the student bundle zip of ``assignment``."""
    templates = sorted(assignment.templates_dir.glob("*.ipynb"))
    if not templates:
        raise AssignmentError(f"{assignment.id}: no student templates in {assignment.templates_dir}; "
                              f"run `autograder templates {assignment.id}` first")
    with tempfile.TemporaryDirectory(prefix="autograder-bundle-") as scratch:
        root = Path(scratch) / assignment.id
        root.mkdir()
        for template in templates:
            shutil.copy2(template, root / template.name)
        rubric = assignment.rubric
        if rubric.data is not None and assignment.public_data_dir is not None:
            shutil.copytree(assignment.public_data_dir, root / rubric.data.stage_as)
        copy_assignment(assignment, root / ASSIGNMENT_DIR, public=True)
        copy_grader(root / GRADER_DIR)
        (root / "HOW-TO.md").write_text(HOW_TO.format(
            title=rubric.title, notebooks=", ".join(t.name for t in templates), grader=GRADER_DIR,
            assignment=ASSIGNMENT_DIR, example=templates[-1].name, cell_timeout=rubric.limits.check_cell_timeout_s,
        ), encoding="utf-8")
        return zip_folder(Path(scratch), path)
