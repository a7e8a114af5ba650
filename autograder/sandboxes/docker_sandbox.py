"""The Docker backend: each kernel in a container of its own, started with the docker SDK.

The container has no network, a read-only root, an unprivileged user, memory, process
and CPU limits, a size-limited scratch area (``/work``, a tmpfs holding a copy of the
submission), the data view mounted read-only, and GPUs through device requests. The
grader's side (checks, rubric, held-out labels) is never mounted. The kernel reaches
the grader through IPC sockets in the kernel's private folder, mounted at the same path.

jupyter_client drives the container through ``DockerProvisioner``: starting, polling,
signals (interrupts) and killing go to the container, and the container is always
removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import IO, Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from ..errors import GraderError, UsageError
from .sandbox import (
    DEFAULT_UID,
    MB,
    TCMALLOC,
    Place,
    claim_uid,
    hand_over,
    kernel_env,
    manager_for,
)
from .scratch import remove_stale

DEFAULT_IMAGE = "autograder-grading:latest"
LABEL = "org.autograder.kernel"
WORK = "/work"
KERNEL_PYTHON = "/opt/kernel/bin/python"  # the image's kernel environment (see the Dockerfile)
_STAGED = "/submission"


def _client() -> Any:
    import docker  # imported here: the local backend and students never need it

    return docker.from_env(timeout=120)  # type: ignore[attr-defined]


class DockerProvisioner(LocalProvisioner):
    """Start, signal, poll and remove the kernel's container."""

    sandbox: DockerSandbox
    place: Place
    container: Any = None

    @property
    def has_process(self) -> bool:
        return self.container is not None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        env = kwargs.get("env") or {}
        if os.geteuid() == 0:  # written by jupyter_client just now, readable by the grader alone
            os.chown(self.place.connection_file, self.sandbox.uid, self.sandbox.gid)
        self.container = await asyncio.to_thread(self.sandbox.run_container, self.place, cmd, env)
        self.pid = None
        self.pgid = None
        self.cwd = str(self.place.cwd)
        return self.connection_info

    def _state(self) -> dict[str, Any]:
        try:
            self.container.reload()
        except Exception:  # removed under us: treat as exited
            return {"Running": False, "ExitCode": -1}
        return self.container.attrs.get("State", {})

    async def poll(self) -> int | None:
        if self.container is None:
            return 0
        state = await asyncio.to_thread(self._state)
        if state.get("Running", False) or state.get("Status") in ("created", "restarting"):
            return None
        return int(state.get("ExitCode", -1))

    async def wait(self) -> int | None:
        code = 0
        if self.container is not None:
            while (code := await self.poll()) is None:  # type: ignore[assignment]
                await asyncio.sleep(0.1)
        return code

    async def send_signal(self, signum: int) -> None:
        if self.container is None:
            return
        try:
            await asyncio.to_thread(self.container.kill, signal=signal.Signals(signum).name)
        except Exception:  # an exited container cannot be signalled; poll reports it
            pass

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.to_thread(self.sandbox.remove, container, self.place)
        await super().cleanup(restart=restart)


class DockerSandbox:
    """One container per kernel, from the grading image."""

    name = "docker"

    def __init__(self, image: str = DEFAULT_IMAGE, *, uid: int | None = None) -> None:
        self.image = image
        self.uid = uid if uid is not None else (DEFAULT_UID if os.geteuid() == 0 else os.getuid())
        self.gid = self.uid if os.geteuid() == 0 else os.getgid()
        self._claim: IO[str] | None = None
        self._client: Any = None
        self._gpu_runtime: bool | None = None
        self._containers: dict[str, Any] = {}
        self._oom_killed: set[str] = set()  # places whose earlier container ran out of memory (a kernel revived)

    def for_slot(self, slot: int) -> DockerSandbox:
        """The sandbox of parallel worker ``slot`` (containers are apart already)."""
        return DockerSandbox(self.image, uid=self.uid)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _client()
        return self._client

    # -- the Sandbox interface

    def check(self) -> None:
        if os.geteuid() == 0 and self._claim is None:  # the uid is shared with local sandboxes' users
            self.uid, self._claim = claim_uid(self.uid)
            self.gid = self.uid
        try:
            info = self.client.info()
        except Exception as error:
            raise GraderError(
                f"the Docker sandbox needs a running Docker engine this user may use: {error}. "
                "Start dockerd (or add this user to the docker group), or grade with --sandbox local."
            ) from None
        self._gpu_runtime = "nvidia" in (info.get("Runtimes") or {}) or bool(info.get("CDISpecDirs"))
        try:
            self.client.images.get(self.image)
        except Exception:
            raise GraderError(
                f"the grading image {self.image} is not built on this machine: build it with "
                "`autograder image build` (see the README), or name another with --image"
            ) from None
        self._remove_orphans()
        remove_stale()  # the temporary folders of a grader that was killed

    def _remove_orphans(self) -> None:
        """Containers left by a grader that was killed: remove them."""
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            owner = int(container.labels.get(f"{LABEL}.grader-pid", "0") or 0)
            if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
                container.remove(force=True)

    def prepare(self, workdir: Path, readonly: list[Path]) -> None:
        hand_over(workdir, readonly, self.uid if os.geteuid() == 0 else None)

    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[KERNEL_PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                          display_name="autograder (docker)", language="python", resource_dir="")

    def kernel_manager(self, place: Place) -> AsyncKernelManager:
        if os.geteuid() == 0:
            os.chown(place.private, self.uid, self.gid)
        manager = manager_for(self.kernel_spec(), place)
        manager.kernel_id = f"{place.private.name}"
        provisioner = DockerProvisioner(kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager)
        provisioner.sandbox = self
        provisioner.place = place
        manager.provisioner = provisioner
        return manager

    def container_cwd(self, place: Place) -> str:
        relative = place.cwd.relative_to(place.workdir).as_posix()
        return str(PurePosixPath(WORK) / "job" / relative)

    def kernel_env(self, place: Place) -> dict[str, str]:
        return kernel_env(WORK, place.resources, base={})

    def enforced(self, place: Place) -> dict[str, Any]:
        res = place.resources
        return {
            "backend": self.name,
            "image": self.image,
            "uid": self.uid,
            "network": "none",
            "hidden": "not mounted",
            "memory_mb": res.memory_mb,
            "processes": res.processes,
            "cpus": res.cpus,
            "scratch_mb": res.scratch_mb,
            "gpus": self._gpus_label(place),
        }

    def explain(self, place: Place) -> str:
        """Why the kernel's container ended, when the engine knows better than the kernel."""
        container = self._containers.get(str(place.private))
        killed = str(place.private) in self._oom_killed
        if container is None and not killed:
            return ""
        try:
            if container is not None:
                container.reload()
        except Exception:
            return ""
        if killed or (container is not None and container.attrs.get("State", {}).get("OOMKilled")):
            return f"the container ran out of memory (limit {place.resources.memory_mb} MB) and was killed"
        return ""

    def release(self) -> None:
        return None  # every container is removed with its kernel

    # -- containers

    def _gpus_label(self, place: Place) -> str:
        indices = place.resources.gpu_indices(machine_has_gpu=bool(self._gpu_runtime))
        return "all" if indices is None else (",".join(indices) or "none")

    def _device_requests(self, place: Place) -> list[Any]:
        from docker.types import DeviceRequest

        indices = place.resources.gpu_indices(machine_has_gpu=bool(self._gpu_runtime))
        if indices == []:
            return []
        if self._gpu_runtime is False:
            raise UsageError("GPUs were asked for, but this Docker engine has no NVIDIA runtime "
                             "(install nvidia-container-toolkit), or pass --gpus none")
        if indices is None:
            return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        return [DeviceRequest(device_ids=indices, capabilities=[["gpu"]])]

    def run_container(self, place: Place, cmd: list[str], env: dict[str, str]) -> Any:
        from docker.types import Ulimit

        res = place.resources
        memory = f"{res.memory_mb}m" if res.memory_mb else None
        scratch = res.scratch_mb or 2048
        volumes = {
            str(place.workdir): {"bind": _STAGED, "mode": "ro"},
            str(place.private): {"bind": str(place.private), "mode": "rw"},
        }
        for folder in place.readonly:  # the data view, where the staged links point
            volumes[str(folder)] = {"bind": str(folder), "mode": "ro"}
        # copy the submission into the size-limited scratch area, preload the image's tcmalloc
        # where it has one (``sandbox.TCMALLOC``; else glibc's fixed mmap threshold holds), then
        # become the kernel
        preload = " ".join(TCMALLOC)
        script = (f'for lib in {preload}; do if [ -e "$lib" ]; then export LD_PRELOAD="$lib"; break; fi; done; '
                  f'cp -RP --preserve=mode,timestamps {_STAGED} {WORK}/job && cd "$0" && exec "$@"')
        container = self.client.containers.run(
            self.image,
            command=["sh", "-c", script, self.container_cwd(place), *cmd],
            detach=True,
            user=f"{self.uid}:{self.gid}",
            environment=env,
            network_mode="none",
            read_only=True,
            tmpfs={WORK: f"size={scratch}m,mode=1777", "/tmp": "size=512m,mode=1777"},
            volumes=volumes,
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=res.processes,
            nano_cpus=int(res.cpus * 1e9) if res.cpus else None,
            ulimits=[Ulimit(name="fsize", soft=scratch * MB, hard=scratch * MB)],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,
            ipc_mode="private",
            shm_size=f"{max(64, (res.memory_mb or 8192) // 2)}m",  # DataLoader workers share tensors there
            device_requests=self._device_requests(place),
            labels={LABEL: place.private.name, f"{LABEL}.grader-pid": str(os.getpid())},
        )
        self._containers[str(place.private)] = container
        return container

    def remove(self, container: Any, place: Place) -> None:
        self._containers.pop(str(place.private), None)
        try:
            container.reload()
            if container.attrs.get("State", {}).get("OOMKilled"):  # said by explain, after a fresh kernel too
                self._oom_killed.add(str(place.private))
        except Exception:
            pass
        try:
            log = container.logs(tail=20)
            place.log_file.write_bytes(log[-20_000:])
        except Exception:  # logs are a courtesy; removal is not
            pass
        deadline = time.monotonic() + 30
        while True:
            try:
                container.remove(force=True)
                return
            except Exception as error:
                if "No such container" in str(error) or time.monotonic() > deadline:
                    return
                time.sleep(0.2)


def _host_pip_settings() -> tuple[Path | None, str, str]:
    """The host's CA bundle and http(s) package indexes, which a build needs to reach them."""
    def setting(name: str) -> str:
        found = subprocess.run([sys.executable, "-m", "pip", "config", "get", name], capture_output=True, text=True)
        return found.stdout.strip() if found.returncode == 0 else ""

    cert = os.environ.get("PIP_CERT") or setting("global.cert") or os.environ.get("REQUESTS_CA_BUNDLE", "")
    def web(urls: str) -> str:  # file:// indexes of the host mean nothing inside a build
        return " ".join(url for url in urls.split() if url.startswith(("http://", "https://")))

    index = web(os.environ.get("PIP_INDEX_URL") or setting("global.index-url"))
    extra = web(os.environ.get("PIP_EXTRA_INDEX_URL") or setting("global.extra-index-url"))
    return (Path(cert) if cert and Path(cert).is_file() else None), index, extra


def build_image(home: Path, *, tag: str = DEFAULT_IMAGE, base: str | None = None,
                echo: Any = print) -> str:
    """Build the grading image from ``home/Dockerfile``, passing on the host's pip settings."""
    dockerfile = home / "Dockerfile"
    if not dockerfile.is_file():
        raise UsageError(f"{dockerfile} not found: build from a checkout of the grader")
    cert, index, extra = _host_pip_settings()
    certs = home / "docker" / "certs"
    copied = certs / "host-ca.crt"
    if cert is not None:
        copied.write_bytes(cert.read_bytes())
    args = {"PIP_INDEX": index, "PIP_EXTRA_INDEX": extra, **({"BASE": base} if base else {})}
    try:
        stream = _client().api.build(path=str(home), tag=tag, buildargs=args, network_mode="host",
                                     rm=True, forcerm=True, decode=True)
        for chunk in stream:
            if "error" in chunk:
                raise GraderError(f"building {tag} failed: {chunk['error'].strip()}")
            text = chunk.get("stream", "").rstrip()
            if text:
                echo(text)
    finally:
        copied.unlink(missing_ok=True)
    return tag
