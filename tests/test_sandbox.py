"""Both sandboxes, against hostile submissions, with a real kernel and (in CI) a real Docker engine.

Docker tests skip on a machine without a Docker engine and the grading image, except
where ``AUTOGRADER_REQUIRE_DOCKER=1`` (set by ``.ci/run``): there a missing engine fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from autograder.assignment import load_assignment
from autograder.batch import grade_batch
from autograder.errors import GraderError
from autograder.intake import open_submission
from autograder.pipeline import GradeOptions, grade_submission, start
from autograder.sandbox import LocalSandbox, make_sandbox, parse_memory

from .conftest import CELLS, TRIVIAL, write_notebook
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


def test_hostile_corpus_is_contained(sandbox, tmp_path, monkeypatch):
    """Every hostile or broken submission gets its points and its reason; the good
    submission graded after each one earns everything; nothing secret leaks."""
    monkeypatch.setenv("AUTOGRADER_TEST_TOKEN", SECRET)  # the grader's environment must not reach kernels
    labels = Path(os.environ["AUTOGRADER_CACHE"]) / "synthetic" / "labels.csv"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(f"image,label\n{SECRET},1\n")
    batch, out = tmp_path / "batch", tmp_path / "results"
    holder = batch / "00-holder"
    write_notebook(holder / NAME, *CELLS)
    (holder / "notes.txt").write_text(SECRET)
    listener = Listener()
    secrets = Secrets(other_submission=holder / "notes.txt", checks=TRIVIAL / "checks" / "check_trivial.py",
                      labels=labels, results=out, port=listener.port)
    cases = [case for case in CORPUS if ROOT_USER or sandbox.name == "docker" or not case.root_only_local]
    for number, case in enumerate(cases, start=1):
        case.write(batch / f"{number:02d}-a-{case.name}", secrets)
        write_notebook(batch / f"{number:02d}-b-canary" / NAME, *CELLS)
    try:
        entries = grade_batch(load_assignment(TRIVIAL), [batch], out_dir=out, options=OPTIONS, sandbox=sandbox)
    finally:
        listener.close()
    by_id = {entry.id: entry for entry in entries}
    assert len(entries) == 2 * len(cases) + 1
    assert all(entry.status == "graded" for entry in entries), [(e.id, e.message) for e in entries if e.status != "graded"]
    check_source = secrets.checks.read_text().splitlines()[0]
    problems = []
    for number, case in enumerate(cases, start=1):
        ident = f"{number:02d}-a-{case.name}"
        record_text = (out / ident / "grade.json").read_text()
        record = json.loads(record_text)
        executed = out / ident / "executed" / NAME
        shown = executed.read_text() if executed.exists() else ""
        got = record["totals"]["auto_points"]
        if case.kept(sandbox.name) is not None and got != case.kept(sandbox.name):
            problems.append(f"{case.name}: {got} points, expected {case.kept(sandbox.name)}")
        if not case.explained(record_text + shown):
            problems.append(f"{case.name}: result does not say {case.reason!r}")
        if SECRET in shown or check_source in shown:
            problems.append(f"{case.name}: a secret reached the notebook")
        canary = by_id[f"{number:02d}-b-canary"]
        if canary.totals["auto_points"] != FULL:
            problems.append(f"after {case.name}, a good submission got {canary.totals['auto_points']}")
    assert not problems, "\n".join(problems)
    assert listener.connections == 0, "a kernel reached the grader's loopback"
    assert json.loads((out / "00-holder" / "grade.json").read_text())["totals"]["auto_points"] == FULL
    faked = json.loads((out / f"{[c.name for c in cases].index('fake-results-file') + 1:02d}-a-fake-results-file"
                        / "grade.json").read_text())
    assert faked["totals"]["auto_points"] == 7.0 and faked.get("digest")
    assert "fake-results-file,9" not in (out / "summary.csv").read_text()
    enforced = json.loads((out / "01-b-canary" / "grade.json").read_text())["sandbox"][NAME]
    assert enforced["backend"] == sandbox.name
    assert enforced["network"] in ("cut", "none")


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
    assert record["sandbox"][NAME]["uid"] == sandbox.uid != 0
    assert record["sandbox"][NAME]["hidden"] == "hidden"
    assert record["sandbox"][NAME]["limits"]["address_space"] == 4096 * 1024 * 1024


@pytest.mark.skipif(not ROOT_USER, reason="a user of its own needs a root grader")
def test_unreachable_python_is_explained(tmp_path):
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    python = hidden / "python"
    python.symlink_to(os.path.realpath(os.sys.executable))
    with pytest.raises(GraderError, match=r"uid \d+, which cannot run the grader's Python.*other users can read"):
        LocalSandbox(str(python)).check()


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
    assert not docker.client.containers.list(all=True, filters={"label": "org.autograder.kernel"})


def test_memory_sizes_parse():
    assert parse_memory("8g") == 8192
    assert parse_memory("512m") == 512
    assert parse_memory("1024") == 1024
    with pytest.raises(Exception, match="--memory 'lots'"):
        parse_memory("lots")


@pytest.mark.skipif(not ROOT_USER, reason="sandbox users exist only when the grader runs as root")
def test_two_graders_on_one_machine_never_share_a_sandbox_user():
    first, second = LocalSandbox(), LocalSandbox()
    first.check()
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
