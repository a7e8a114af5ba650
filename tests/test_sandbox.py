"""Both sandboxes, against hostile submissions, with a real kernel and (in CI) a real Docker engine.

Docker tests skip on a machine without a Docker engine and the grading image, except
where ``AUTOGRADER_REQUIRE_DOCKER=1`` (set by ``.ci/run``): there a missing engine fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder.course.assignment import load_assignment
from autograder.errors import GraderError
from autograder.grading.intake import open_submission
from autograder.grading.pipeline import GradeOptions, grade_submission, start
from autograder.marking.batch import grade_batch
from autograder.sandboxes.backends import make_sandbox
from autograder.sandboxes.resources import parse_memory
from autograder.sandboxes.sandbox import (
    LocalSandbox,
    _processes_of,
    become_subreaper,
)

from .conftest import CELLS, ROOT, TRIVIAL, run_cli, write_notebook
from .hostile import CORPUS, FULL, NAME, SECRET, Secrets

ROOT_USER = os.geteuid() == 0
OPTIONS = GradeOptions(cell_timeout_s=8, total_timeout_s=60, memory_mb=4096, scratch_mb=256, gpus="none")


def docker_sandbox():
    try:
        sandbox = make_sandbox("docker")
        sandbox.check()
    except GraderError as error:
        if os.environ.get("AUTOGRADER_REQUIRE_DOCKER") == "1":
            pytest.fail(f"AUTOGRADER_REQUIRE_DOCKER=1 but Docker cannot be used: {error}")
        # a developer's machine without Docker; CI sets AUTOGRADER_REQUIRE_DOCKER=1, so there this fails
        pytest.skip(f"no Docker engine with the grading image here: {error}")
    return sandbox


@pytest.fixture(params=["local", "docker"])
def sandbox(request):
    if request.param == "docker":
        return docker_sandbox()
    local = LocalSandbox()
    local.check()
    return local


class Listener:
    """A TCP port on the grader's loopback that records every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.server.close()


def host_folder(tmp_path: Path, name: str, *files: str) -> Path:
    """A folder outside the test's own temporary folder that any user of the host may read
    (as a Moodle download or another clone left world-readable would be), holding SECRET."""
    folder = Path(tempfile.mkdtemp(prefix=f"autograder-test-{name}-", dir="/var/tmp"))
    folder.chmod(0o755)
    for relative in files:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_text(f"{SECRET}\n")
        path.chmod(0o644)
    return folder


def grade_corpus(sandbox, tmp_path, monkeypatch, cases):
    """Grade each case in one batch, each that may disturb the machine followed by a good
    submission; return what each shows."""
    monkeypatch.setenv("AUTOGRADER_TEST_TOKEN", SECRET)  # the grader's environment must not reach kernels
    labels = Path(os.environ["AUTOGRADER_CACHE"]) / "synthetic" / "labels.csv"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(f"image,label\n{SECRET},1\n")
    batch, out = tmp_path / "batch", tmp_path / "results"
    holder = batch / "00-holder"
    write_notebook(holder / NAME, *CELLS)
    (holder / "notes.txt").write_text(SECRET)
    world = host_folder(tmp_path, "world", "notes.txt")
    clone = host_folder(tmp_path, "clone", "rubrics/other/checks/check_other.py", "reference_solutions/other/a.txt")
    listener = Listener()
    forbidden = (str(ROOT / "rubrics"), str(ROOT / "reference_solutions"), str(TRIVIAL), str(out), str(labels.parent),
                 str(world), str(clone), str(batch))
    secrets = Secrets(other_submission=holder / "notes.txt", checks=TRIVIAL / "checks" / "check_trivial.py",
                      labels=labels, results=out, port=listener.port, world=world, forbidden=forbidden)
    for number, case in enumerate(cases, start=1):
        case.write(batch / f"{number:02d}-a-{case.name}", secrets)
        if case.disturbs:
            write_notebook(batch / f"{number:02d}-b-canary" / NAME, *CELLS)
    modes = {folder: folder.stat().st_mode for folder in (TRIVIAL, ROOT / "reference_solutions")}
    try:
        entries = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=out, options=OPTIONS, sandbox=sandbox)
    finally:
        listener.close()
        shutil.rmtree(world, ignore_errors=True)
        shutil.rmtree(clone, ignore_errors=True)
        for folder, mode in modes.items():  # the permission walls close the grader's folders: open them again
            folder.chmod(mode)
    assert listener.connections == 0, "a kernel reached the grader's loopback"
    assert len(entries) == len(cases) + sum(case.disturbs for case in cases) + 1
    assert all(e.status == "graded" for e in entries), [(e.id, e.message) for e in entries if e.status != "graded"]
    return entries, out, secrets


def outputs_of(path: Path) -> str:
    """Everything the notebook's cells printed or displayed (not their source)."""
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            texts.append("".join(text) if isinstance(text, list) else text)
            texts += [str(value) for value in output.get("data", {}).values()]
            texts.append(str(output.get("evalue", "")))
    return "\n".join(texts)


def corpus_problems(sandbox_name, cases, entries, out, secrets) -> list[str]:
    by_id = {entry.id: entry for entry in entries}
    check_source = secrets.checks.read_text().splitlines()[0]
    problems = []
    for number, case in enumerate(cases, start=1):
        ident = f"{number:02d}-a-{case.name}"
        record_text = (out / ident / "grade.json").read_text()
        record = json.loads(record_text)
        executed = out / ident / "executed" / NAME
        shown = executed.read_text() if executed.exists() else ""
        got = record["totals"]["auto_points"]
        if case.kept(sandbox_name) is not None and got != case.kept(sandbox_name):
            problems.append(f"{case.name}: {got} points, expected {case.kept(sandbox_name)}")
        if not case.explained(record_text + shown):
            problems.append(f"{case.name}: result does not say {case.reason!r}")
        if SECRET in shown or check_source in shown:
            problems.append(f"{case.name}: a secret reached the notebook")
        printed = outputs_of(executed) if executed.exists() else ""
        problems += [f"{case.name}: the kernel found {path}" for path in secrets.forbidden if path in printed]
        canary = by_id.get(f"{number:02d}-b-canary")
        if canary is not None and canary.totals["auto_points"] != FULL:
            problems.append(f"after {case.name}, a good submission got {canary.totals['auto_points']}")
    return problems


def test_hostile_corpus_is_contained(sandbox, tmp_path, monkeypatch):
    """Every hostile or broken submission gets its points and its reason; the good
    submission graded after each one earns everything; nothing secret leaks, and a kernel
    that walks its whole file system finds none of the grader's folders, another checkout
    or a world-readable folder of the host."""
    cases = [case for case in CORPUS if ROOT_USER or sandbox.name == "docker" or not case.root_only_local]
    entries, out, secrets = grade_corpus(sandbox, tmp_path, monkeypatch, cases)
    problems = corpus_problems(sandbox.name, cases, entries, out, secrets)
    assert not problems, "\n".join(problems)
    assert json.loads((out / "00-holder" / "grade.json").read_text())["totals"]["auto_points"] == FULL
    faked = json.loads((out / f"{[c.name for c in cases].index('fake-results-file') + 1:02d}-a-fake-results-file"
                        / "grade.json").read_text())
    assert faked["totals"]["auto_points"] == 7.0 and faked.get("digest")
    assert "fake-results-file,9" not in (out / "summary.csv").read_text()
    enforced = json.loads((out / "00-holder" / "grade.json").read_text())["sandbox"][NAME]
    assert enforced["backend"] == sandbox.name
    assert enforced["network"] in ("cut", "none")
    if sandbox.name == "local":
        assert enforced["walls"] == "bwrap", enforced


@pytest.mark.skipif(not ROOT_USER, reason="permissions hide folders only from a user of its own (root grader)")
def test_without_namespaces_permissions_still_hide_the_grader(tmp_path, monkeypatch):
    """Where namespaces are refused (simulated), the grader's folders are unreadable to the
    sandbox user, what one submission leaves in /tmp, /dev/shm or /var/tmp is gone before
    the next, and grade.json says which walls did not stand."""
    sandbox = LocalSandbox(mode="permissions")
    sandbox.check()
    cases = [case for case in CORPUS if case.walls and not case.own_root_only]
    entries, out, secrets = grade_corpus(sandbox, tmp_path, monkeypatch, cases)
    problems = corpus_problems("local", cases, entries, out, secrets)
    assert not problems, "\n".join(problems)
    enforced = json.loads((out / "00-holder" / "grade.json").read_text())["sandbox"][NAME]
    assert enforced["walls"] == "permissions"
    assert "unreadable to the sandbox user" in enforced["filesystem"]
    assert enforced["uid"] == sandbox.uid


@pytest.mark.skipif(not ROOT_USER, reason="a user of its own needs a root grader")
def test_release_reaps_the_graders_orphans_and_leaves_anothers_zombies_to_it():
    """The grader reaps the orphans of its kernels (bubblewrap's init) at once; a zombie of
    the same user whose parent is another process (another worker's probe) is not waited for."""
    sandbox = LocalSandbox()
    sandbox.check()
    become_subreaper()
    uid = sandbox.uid
    forked = ("import os, sys, time\npid = os.fork()\nif pid == 0:\n    os.setuid({uid})\n    time.sleep({child})\n"
              "    os._exit(0)\nprint(pid, flush=True)\ntime.sleep({parent})")
    other = subprocess.Popen([sys.executable, "-c", forked.format(uid=uid, child=0, parent=60)],
                             stdout=subprocess.PIPE, text=True)
    orphan = subprocess.run([sys.executable, "-c", forked.format(uid=uid, child=1, parent=0)],
                            capture_output=True, text=True, check=True)
    try:
        foreign, own = int(other.stdout.readline()), int(orphan.stdout)
        deadline = time.monotonic() + 60
        while not {own, foreign} <= set(_zombies()):
            assert time.monotonic() < deadline, "the zombies did not appear"
            time.sleep(0.1)
        zombies = _processes_of(uid)[1]  # this process's zombies of the user (an earlier test may have left one)
        assert own in zombies and foreign not in zombies
        sandbox.release()
        assert not Path(f"/proc/{own}").exists()  # reaped by the grader, its subreaper
        assert foreign in _zombies()  # its parent's to reap
    finally:
        other.kill()
        other.wait()


def _zombies() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and "State:\tZ" in (entry / "status").read_text():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not ROOT_USER, reason="a user of its own needs a root grader")
def test_local_sandbox_runs_students_as_their_own_user(tmp_path):
    sandbox = LocalSandbox()
    sandbox.check()
    write_notebook(tmp_path / "s" / NAME, *CELLS, "import os\nwho = os.getuid()")
    submission = open_submission(tmp_path / "s")
    grade = grade_submission(load_assignment(TRIVIAL), submission, options=OPTIONS, sandbox=sandbox,
                             out=tmp_path / "out")
    record = json.loads((tmp_path / "out" / "grade.json").read_text())
    assert grade.totals()["auto_points"] == FULL
    enforced = record["sandbox"][NAME]
    assert enforced["uid"] == sandbox.uid != 0
    assert enforced["walls"] == "bwrap" and enforced["network"] == "cut" and enforced["tmp"] == "private"
    if "cgroup" in enforced["memory"]:  # resident memory; no address-space limit to break imports
        assert "address_space" not in enforced["limits"]
    else:
        assert enforced["limits"]["address_space"] == 4096 * 1024 * 1024


@pytest.mark.skipif(not ROOT_USER, reason="a user of its own needs a root grader")
def test_unreachable_python_is_explained_without_namespaces(tmp_path):
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    python = hidden / "python"
    python.symlink_to(os.path.realpath(os.sys.executable))
    with pytest.raises(GraderError, match=r"uid \d+, which cannot run the grader's Python.*other users can read"):
        LocalSandbox(str(python), mode="permissions").check()


@pytest.mark.skipif(not ROOT_USER, reason="a user of its own needs a root grader")
def test_python_under_a_closed_home_is_shown_to_the_kernel_alone(tmp_path):
    """As root, an interpreter under a folder the sandbox user cannot enter (pyenv under a
    0700 /root) is bound into the kernel's own namespace; the host's folder stays closed."""
    home = Path(tempfile.mkdtemp(prefix="autograder-test-home-", dir="/var/tmp"))  # 0700, root's
    try:
        (home / "venv").symlink_to(Path(os.sys.prefix))
        sandbox = LocalSandbox(str(home / "venv" / "bin" / "python"))
        sandbox.check()
        write_notebook(tmp_path / "s" / NAME, *CELLS, "import sys\nwhere = sys.prefix")
        submission = open_submission(tmp_path / "s")
        started = start(load_assignment(TRIVIAL), submission, options=OPTIONS, sandbox=sandbox)
        try:
            assert started.session.channels[NAME].get("where") == str(home / "venv")
            assert str(home) in started.enforced[NAME]["revealed"]
        finally:
            started.close()
            submission.close()
        assert home.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_memory_is_resident_memory_not_address_space(sandbox, tmp_path):
    """Under the default limits, a correct notebook holding ~200 MB of tensors then importing
    torchvision and scipy earns full marks; a real memory hog is stopped, and its result
    says it ran out of memory."""
    good = tmp_path / "good"
    write_notebook(good / NAME, *CELLS, "import torch\nheld = [torch.ones(25_000_000) for _ in range(2)]",
                   "import torchvision, scipy.signal, scipy.linalg, torchvision.ops\n"
                   "boxes = torchvision.ops.nms(torch.tensor([[0, 0, 1, 1.0]] * 4), torch.rand(4), 0.5)")
    defaults = GradeOptions(cell_timeout_s=120, total_timeout_s=300, gpus="none")
    grade = grade_submission(load_assignment(TRIVIAL), open_submission(good), options=defaults, sandbox=sandbox,
                             out=tmp_path / "good-out")
    record = json.loads((tmp_path / "good-out" / "grade.json").read_text())
    assert grade.totals()["auto_points"] == FULL
    assert not record["notebooks"][0]["cells_not_ok"], record["notebooks"][0]["cells_not_ok"]
    hog = tmp_path / "hog"
    write_notebook(hog / NAME, CELLS[0], "hog = []\nwhile True:\n    hog.append(bytearray(64 * 1024 * 1024))",
                   *CELLS[1:])
    small = GradeOptions(cell_timeout_s=60, total_timeout_s=120, memory_mb=1024, gpus="none")
    grade = grade_submission(load_assignment(TRIVIAL), open_submission(hog), options=small, sandbox=sandbox,
                             out=tmp_path / "hog-out")
    text = (tmp_path / "hog-out" / "grade.json").read_text().lower()
    if "time limit" not in text:  # killed: a fresh kernel re-ran the cell before it and went on without it
        assert grade.totals()["auto_points"] == FULL, [(i.id, i.reason) for i in grade.items]
        assert "a fresh kernel re-ran the cells before it and went on without it" in text
    memory = json.loads(text)["sandbox"][NAME.lower()].get("memory", "")
    if sandbox.name == "docker":  # the engine's killer, or reclaim stalling the cell until its time limit
        assert "out of memory" in text or "time limit" in text
    elif "cgroup" in memory:  # the kernel's group's peak, read from outside the kernel
        assert re.search(r"out of memory: .* memory limit, 1,0\d\d mb at the peak", text), text[:2000]
    else:  # the last fallback, an address-space limit, raises in the cell
        assert "memoryerror" in text


def test_same_scores_in_both_backends(tmp_path):
    """The reference and broken submissions of both assignments score the same in Docker and locally."""
    docker = docker_sandbox()
    local = LocalSandbox()
    trivial = load_assignment(TRIVIAL)
    write_notebook(tmp_path / "trivial-good" / NAME, *CELLS)
    write_notebook(tmp_path / "trivial-broken" / NAME, CELLS[0], "def double(x):\n    return x", CELLS[2])
    ece = load_assignment("ece4179-2023")
    reference = ece.reference_dir
    options = GradeOptions(notebooks=("Q1_Q2_calculations.ipynb", "Q3_regression.ipynb"))
    runs = [(trivial, tmp_path / "trivial-good", OPTIONS), (trivial, tmp_path / "trivial-broken", OPTIONS),
            (ece, reference, options)]
    for assignment, path, opts in runs:
        scores = {}
        for sandbox in (local, docker):
            submission = open_submission(path)
            try:
                grade = grade_submission(assignment, submission, options=opts, sandbox=sandbox)
            finally:
                submission.close()
            scores[sandbox.name] = {item.id: item.points for item in grade.items}
        assert scores["local"] == scores["docker"], path.name
    assert sum(points or 0 for points in scores["docker"].values()) > 0  # the ECE reference earns points


def test_docker_limits_reach_the_container(tmp_path):
    """Seen from inside the kernel: its user, its memory limit, no network interface but loopback."""
    docker = docker_sandbox()
    write_notebook(tmp_path / "s" / NAME, *CELLS,
                   "import os\nwho = os.getuid()\n"
                   "limit = '/sys/fs/cgroup/memory.max' if os.path.exists('/sys/fs/cgroup/memory.max') "
                   "else '/sys/fs/cgroup/memory/memory.limit_in_bytes'\nmemory = int(open(limit).read())\n"
                   "interfaces = sorted(os.listdir('/sys/class/net'))\nroot_writable = os.access('/', os.W_OK)")
    submission = open_submission(tmp_path / "s")
    started = start(load_assignment(TRIVIAL), submission, options=OPTIONS, sandbox=docker)
    try:
        channel = started.session.channels[NAME]
        assert channel.get("who") == docker.uid != 0
        assert channel.get("memory") == 4096 * 1024 * 1024
        assert channel.get("interfaces") == ["lo"]
        assert channel.get("root_writable") is False
    finally:
        started.close()
        submission.close()
    # this grader's containers (another test's grader may be running kernels beside it)
    mine = f"org.autograder.kernel.grader-pid={os.getpid()}"
    assert not docker.client.containers.list(all=True, filters={"label": mine})


def test_memory_sizes_parse():
    assert parse_memory("8g") == 8192
    assert parse_memory("512m") == 512
    assert parse_memory("1024") == 1024
    with pytest.raises(Exception, match="--memory 'lots'"):
        parse_memory("lots")


@pytest.mark.skipif(not ROOT_USER, reason="sandbox users exist only when the grader runs as root")
def test_two_graders_on_one_machine_never_share_a_sandbox_user(tmp_path, monkeypatch):
    first, second = LocalSandbox(), LocalSandbox()
    first.check()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # a grader with a TMPDIR of its own
    second.check()  # the first still holds its user: the second takes the next one
    assert first.uid != second.uid
    sleeper = subprocess.Popen(["sleep", "60"], user=first.uid, group=first.uid)
    try:
        LocalSandbox(uid=first.uid).release()  # never claimed: must not kill the first grader's processes
        assert sleeper.poll() is None
        second.release()
        assert sleeper.poll() is None
        first.release()  # the owner's release ends it (and reaps it: it is this process's child)
        sleeper.wait(timeout=10)
        assert not Path(f"/proc/{sleeper.pid}").exists()
    finally:
        sleeper.kill()


def test_a_kernel_slower_than_its_start_timeout_is_the_graders_failure(tmp_path, monkeypatch):
    """A kernel that starts too late (simulated) is the grader's failure: the submission is
    tried again and then graded in full; when every try is late it is `error`, never 0
    points: error.txt, the cohort page and the exit status say so, and a rerun grades it."""
    monkeypatch.setenv("AUTOGRADER_RETRY_WAITS", "1")
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_notebook(inputs / "alice" / NAME, *CELLS)
    monkeypatch.setenv("AUTOGRADER_TEST_SLOW_START", f"30:{tmp_path / 'once'}:1")
    options = GradeOptions(cell_timeout_s=20, total_timeout_s=60, gpus="none", kernel_start_timeout_s=4)
    [entry] = grade_batch(load_assignment(TRIVIAL), [inputs], out_dir=out, options=options, sandbox=LocalSandbox())
    assert (entry.status, entry.attempts, entry.totals["auto_points"]) == ("graded", 2, FULL)
    assert not (out / "alice" / "error.txt").exists()

    late = tmp_path / "late"
    monkeypatch.setenv("AUTOGRADER_TEST_SLOW_START", f"30:{tmp_path / 'always'}:99")
    result = run_cli("grade", TRIVIAL, inputs, "-o", late, "--sandbox", "local", "--start-timeout", "4",
                     "--gpus", "none")
    assert result.returncode == 4, result.stdout + result.stderr
    assert not (late / "alice" / "grade.json").exists()
    assert "was not ready within 4 s" in (late / "alice" / "error.txt").read_text()
    cohort = (late / "cohort.html").read_text()
    assert "1 could not be graded</strong> because the grader" in cohort and "alice" in cohort
    assert "alice" not in (late / "summary.csv").read_text()

    monkeypatch.delenv("AUTOGRADER_TEST_SLOW_START")
    result = run_cli("grade", TRIVIAL, inputs, "-o", late, "--sandbox", "local", "--gpus", "none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((late / "alice" / "grade.json").read_text())["totals"]["auto_points"] == FULL
    assert not (late / "alice" / "error.txt").exists()
    assert "could not be graded</strong>" not in (late / "cohort.html").read_text()


def kernel_modules() -> list[str]:
    """The modules the kernel environment's one list (autograder/requirements/kernel.txt)
    says each of its packages provides."""
    text = (ROOT / "autograder" / "requirements" / "kernel.txt").read_text(encoding="utf-8")
    modules = [name.strip() for line in text.splitlines() if "# import:" in line
               for name in line.split("# import:")[1].split(",")]
    assert {"pytorch_lightning", "lightning.pytorch", "sklearn", "pandas", "seaborn", "tqdm"} <= set(modules)
    return modules


def test_the_kernel_imports_what_the_handouts_notebooks_import(sandbox, tmp_path):
    """Every module of the kernel list imports in a real kernel of each backend (the local
    kernel runs in the grader's environment, the image installs the same list)."""
    modules = kernel_modules()
    imports = "\n".join(f"import {name}" for name in modules)
    write_notebook(tmp_path / "sub" / NAME, imports, *CELLS)
    options = GradeOptions(cell_timeout_s=600, total_timeout_s=900, memory_mb=4096, scratch_mb=256, gpus="none")
    submission = open_submission(tmp_path / "sub")
    started = start(load_assignment(TRIVIAL), submission, options=options, sandbox=sandbox)
    try:
        [run] = started.session.runs
        first = run.cells[1]  # after the parameters cell
        assert (first.status.value, first.ename, first.evalue) == ("ok", "", ""), first.traceback
    finally:
        started.close()
        submission.close()


def test_the_kernels_allocator_and_threads_are_the_students_platforms(monkeypatch: pytest.MonkeyPatch):
    """A kernel on this system preloads its tcmalloc where it has one (as Colab does), and
    otherwise fixes glibc's mmap threshold; one in an image of its own gets the threshold
    only. Its numeric libraries get as many threads as cores it is granted, never more than
    the grader was told to use. (The loop this prevents from growing past the memory limit
    is a variant of EE046211 that keeps its points.)"""
    from autograder.sandboxes import sandbox
    from autograder.sandboxes.resources import Resources

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = sandbox.kernel_env("/home", Resources(cpus=2.5))
    assert env["MALLOC_MMAP_THRESHOLD_"] == "65536"
    assert env.get("LD_PRELOAD") == sandbox.tcmalloc()
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"]) == ("1", "3", "3")
    image = sandbox.kernel_env("/work", Resources(cpus=None), base={})
    assert "LD_PRELOAD" not in image and "OMP_NUM_THREADS" not in image
    monkeypatch.setattr(sandbox, "TCMALLOC", ("/nonexistent/libtcmalloc_minimal.so.4",))
    assert "LD_PRELOAD" not in sandbox.kernel_env("/home", Resources())
