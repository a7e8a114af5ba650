"""The sandbox backends by name: what ``--sandbox`` chooses from.

A backend is a factory from the grading image's name (which only Docker uses) to a
``Sandbox``; adding one is an entry in ``BACKENDS``. ``auto`` is Docker when its engine
and the grading image are here, else the local sandbox.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import GraderError, UsageError
from .docker_sandbox import DEFAULT_IMAGE, DockerSandbox
from .sandbox import LocalSandbox, Sandbox


def _local(image: str | None) -> Sandbox:
    return LocalSandbox()


def _docker(image: str | None) -> Sandbox:
    return DockerSandbox(image or DEFAULT_IMAGE)


BACKENDS: dict[str, Callable[[str | None], Sandbox]] = {"docker": _docker, "local": _local}
SANDBOXES = ("auto", *sorted(BACKENDS))


def as_sandbox(choice: Sandbox | str) -> Sandbox:
    """A sandbox given, or the backend a name chooses (the library's default is ``auto``,
    as the command line's is)."""
    return make_sandbox(choice) if isinstance(choice, str) else choice


def make_sandbox(kind: str = "auto", *, image: str | None = None) -> Sandbox:
    """The backend ``kind`` names (``auto``: Docker if it can run here, else local)."""
    if kind == "auto":
        docker = _docker(image)
        try:
            docker.check()
        except GraderError:
            return _local(image)
        return docker
    factory = BACKENDS.get(kind)
    if factory is None:
        raise UsageError(f"--sandbox {kind!r}: expected one of {', '.join(SANDBOXES)}")
    return factory(image)
