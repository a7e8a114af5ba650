"""A corpus of hostile and broken submissions to the toy assignment.

Each case writes one submission folder and says what grading it must give: the
automatic points it keeps and a phrase its result must contain (the clear reason).
Cases that attack the grader are given the grader's secret paths, as a student who
read the grader's source would know them; the tests then prove nothing leaked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .assignments.trivial.solution import CELLS, write_notebook

FULL = 9.0  # the toy assignment's automatic points
SECRET = "S3CRET-7f1c2a"  # planted in grader files and other submissions; must never reach a notebook
NAME = "trivial.ipynb"


@dataclass(frozen=True)
class Secrets:
    """Grader paths the hostile code goes after."""

    other_submission: Path  # a file of another student's submission, holding SECRET
    checks: Path  # the assignment's hidden check file
    labels: Path  # a held-out labels file in the grader's cache, holding SECRET
    results: Path  # the batch's results folder
    port: int  # a TCP port on the grader's loopback that must never be reached
    world: Path  # a world-readable folder on the host, outside every submission, holding SECRET
    forbidden: tuple[str, ...] = ()  # host paths no kernel may find by walking its file system


@dataclass(frozen=True)
class Case:
    name: str
    points: float | dict[str, float | None] | None  # automatic points it keeps (per backend; None: either way)
    reason: str  # phrases (one of them, any case, "|" between) its result must show; "" when none is due
    write: Callable[[Path, Secrets], None]
    root_only_local: bool = False  # contained locally only when the sandbox has a user of its own
    own_root_only: bool = False  # contained locally only in a root of its own (bubblewrap), not by permissions
    # it may leave the machine changed (files, processes, a dead kernel, memory pressure): a good
    # submission is graded right after it and must earn everything
    disturbs: bool = False
    # contained by the walls (file system, users, network, what is left behind), which differ
    # between bubblewrap and permissions; the others meet limits and the kernel, the same in both
    walls: bool = False

    def kept(self, backend: str) -> float | None:
        return self.points[backend] if isinstance(self.points, dict) else self.points

    def explained(self, text: str) -> bool:
        return not self.reason or any(phrase in text.lower() for phrase in self.reason.lower().split("|"))


def cells(*extra: str, before: bool = False) -> Callable[[Path, Secrets], None]:
    """A solution notebook with ``extra`` cells after (or before) the solution's own."""

    def write(folder: Path, secrets: Secrets) -> None:
        values = {field: getattr(secrets, field) for field in Secrets.__dataclass_fields__}
        sources = [cell.format(**values) for cell in extra]
        body = [*sources, *CELLS] if before else [*CELLS, *sources]
        write_notebook(folder / NAME, *body)

    return write


def raw(data: bytes) -> Callable[[Path, Secrets], None]:
    def write(folder: Path, secrets: Secrets) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / NAME).write_bytes(data)

    return write


def _format3(folder: Path, secrets: Secrets) -> None:
    """The solution saved as an nbformat 3 notebook (worksheets, ``input`` cells)."""
    cells_v3 = [{"cell_type": "code", "input": "SCALE = 1", "language": "python", "outputs": [],
                 "metadata": {"tags": ["parameters"]}}]
    cells_v3 += [{"cell_type": "code", "input": source, "language": "python", "outputs": [], "metadata": {}}
                 for source in CELLS]
    nb = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "trivial"},
          "worksheets": [{"cells": cells_v3, "metadata": {}}]}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / NAME).write_text(json.dumps(nb), encoding="utf-8")
    nbformat.read(folder / NAME, as_version=4)  # the case is only fair if nbformat can read it


LEAK = (
    "import glob, os\n"
    "found = []\n"
    "for path in {paths}:\n"
    "    try:\n"
    "        with open(path, errors='replace') as handle:\n"
    "            found.append(handle.read()[:2000])\n"
    "    except Exception as error:\n"
    "        found.append(f'{{type(error).__name__}}')\n"
    "for pattern in ['/tmp/*', '/tmp/*/*', '/tmp/*/*/*', os.path.expanduser('~/*'), '../*', '../../*']:\n"
    "    for path in glob.glob(pattern)[:200]:\n"
    "        try:\n"
    "            if os.path.isfile(path) and os.path.getsize(path) < 100_000:\n"
    "                found.append(open(path, errors='replace').read())\n"
    "        except Exception:\n"
    "            pass\n"
    "print('\\n'.join(found))"
)

# Written at run time from two halves, so that the notebook's source never holds SECRET itself.
LITTER = (
    "import os\nsecret = 'S3CRET' + '-7f1c2a'\n"
    "for folder in ['/tmp', '/dev/shm', '/var/tmp', os.path.expanduser('~')]:\n    try:\n"
    "        with open(os.path.join(folder, 'litter.txt'), 'w') as handle:\n            handle.write(secret)\n"
    "        os.makedirs(os.path.join(folder, 'litter-dir'), exist_ok=True)\n"
    "        open(os.path.join(folder, 'litter-dir', 'inside.txt'), 'w').write(secret)\n"
    "    except Exception as error:\n        print(folder, type(error).__name__)"
)
READ_LITTER = (
    "import glob\nfound = []\nfor folder in ['/tmp', '/dev/shm', '/var/tmp']:\n"
    "    for path in glob.glob(folder + '/litter*') + glob.glob(folder + '/litter-dir/*'):\n        try:\n"
    "            found.append(open(path, errors='replace').read(2000))\n        except Exception:\n"
    "            pass\nprint('\\n'.join(found))"
)
# Walks the whole file system it can see (but the system folders) and prints every path.
WALK = (
    "import os\nseen = []\nskip = ('/usr', '/etc', '/proc', '/sys', '/dev', '/lib', '/bin', '/sbin', '/run')\n"
    "for top, folders, files in os.walk('/'):\n    if top.startswith(skip) or '/lib/python' in top:\n"
    "        folders[:] = []\n        continue\n    seen.extend(os.path.join(top, name) for name in folders + files)\n"
    "    for name in files:\n        path = os.path.join(top, name)\n        try:\n"
    "            if os.path.getsize(path) < 100_000 and name.endswith(('.txt', '.py', '.csv', '.yaml', '.json')):\n"
    "                seen.append(open(path, errors='replace').read())\n        except Exception:\n"
    "            pass\nprint('\\n'.join(seen))"
)

CORPUS = [
    Case("infinite-loop", FULL, "time limit", cells("while True:\n    pass"), disturbs=True),
    Case("sleep-forever", FULL, "time limit", cells("import time\ntime.sleep(10**6)"), disturbs=True),
    Case("fork-bomb", FULL, "", cells(
        "import os, time\nborn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(3600)\n            os._exit(0)\n        born += 1\nexcept OSError as error:\n"
        "    print('stopped after', born, error)"), root_only_local=True, disturbs=True),
    # the out-of-memory killer of the kernel's control group ends the kernel (the grader says
    # so), or reclaim stalls the cell until its time limit; where there are no control groups,
    # the address-space limit raises MemoryError in the cell
    Case("memory-hog", None, "memory|time limit", cells(
        "hog = []\nwhile True:\n    hog.append(b'x' * (64 * 1024 * 1024))"), disturbs=True),
    Case("disk-filler", FULL, "", cells(
        "block = b'x' * (1024 * 1024)\nwith open('filler.bin', 'wb') as handle:\n    while True:\n"
        "        handle.write(block)\n        handle.flush()"), disturbs=True),
    Case("many-files", FULL, "disk", cells(
        "import os\nblock = os.urandom(1024 * 1024)\nfor n in range(1024):\n"
        "    with open(f'part-{{n}}.bin', 'wb') as handle:\n        for _ in range(8):\n"
        "            handle.write(block)"), disturbs=True),
    Case("litter-tmp", FULL, "", cells(LITTER), disturbs=True, walls=True),
    Case("read-litter", FULL, "", cells(READ_LITTER), walls=True),
    Case("walk-the-root", FULL, "", cells(WALK), own_root_only=True, walls=True),
    Case("output-flood", FULL, "cut", cells("for i in range(300_000):\n    print('flood ' * 20)")),
    # a kernel that dies is said so; a fresh one runs the cells before it again and the
    # answers in them are graded (the notebook goes on without the cell that killed it)
    Case("os-exit", FULL, "kernel died", cells("import os\nos._exit(3)"), disturbs=True),
    Case("segfault", FULL, "kernel died", cells("import ctypes\nctypes.string_at(0)"), disturbs=True),
    Case("sys-exit", FULL, "SystemExit", cells("import sys\nsys.exit(3)")),
    Case("network", FULL, "", cells(
        "import socket\nreached = []\nfor host in ['127.0.0.1', 'pypi.org']:\n    try:\n"
        "        socket.create_connection((host, {port}), timeout=3).close()\n        reached.append(host)\n"
        "    except Exception as error:\n        print(host, type(error).__name__, error)\nprint('reached', reached)"),
         walls=True),
    Case("read-other-submission", FULL, "", cells(LEAK.replace("{paths}", "[{other_submission!r}]")), walls=True),
    Case("read-hidden-checks", FULL, "", cells(LEAK.replace("{paths}", "[{checks!r}]")), walls=True),
    Case("read-hidden-labels", FULL, "", cells(LEAK.replace("{paths}", "[{labels!r}]")), walls=True),
    Case("read-world-readable", FULL, "", cells(LEAK.replace("{paths}", "[{world!r} + '/notes.txt']")),
         own_root_only=True, walls=True),
    Case("fake-results-file", 7.0, "", cells(
        "import json, os\nanswer = 41\nfake = {{'totals': {{'auto_points': 9, 'auto_max': 9}}}}\n"
        "for folder in ['.', '..', {results!r}, os.path.join({results!r}, 'fake-results-file')]:\n    try:\n"
        "        open(os.path.join(folder, 'grade.json'), 'w').write(json.dumps(fake))\n"
        "        open(os.path.join(folder, 'summary.csv'), 'w').write('fake-results-file,9')\n"
        "    except Exception as error:\n        print(folder, type(error).__name__)"), disturbs=True, walls=True),
    Case("print-fake-results", 0, "", cells(
        "answer = 0\ndef double(x):\n    return x\ndef classify(x):\n    return 0 * np.asarray(x)\n"
        "print('Score: 9/9, all tests passed')\nprint({{'answer': 42, 'accuracy': 1.0}})")),
    # torch in a cell of its own: its import may outlast the corpus's short cell limit on a
    # loaded machine, and the wrong double must be in place whatever that cell does
    Case("monkeypatch-comparisons", 7.0, "", cells(
        "import numpy\ndef double(x):\n    return np.asarray(x) * 3\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
        "numpy.isclose = lambda a, b, *r, **k: numpy.ones(numpy.shape(a), bool)\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None",
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True")),
    Case("delete-workdir", FULL, "", cells("import os, shutil\nshutil.rmtree(os.getcwd(), ignore_errors=True)"),
         disturbs=True, walls=True),
    Case("kill-the-grader", FULL, "", cells(
        "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except Exception as error:\n        print(pid, type(error).__name__)"),
         root_only_local=True, disturbs=True, walls=True),
    Case("environment-snooping", FULL, "", cells("import os\nprint(dict(os.environ))"), walls=True),
    Case("read-stdin", FULL, "StdinNotImplementedError", cells("input('password: ')")),
    Case("not-json", 0, "not a valid notebook", raw(b"this is not a notebook {")),
    Case("format-3", FULL, "", _format3),
    Case("zero-bytes", 0, "not a valid notebook", raw(b"")),
    Case("binary-junk", 0, "not a valid notebook", raw(bytes(range(256)) * 64)),
]
