"""Start a student's kernel behind the local sandbox's walls, then become it.

Run as ``python -m autograder.sandboxes.jail CONFIG.json -- COMMAND...``, where COMMAND is the
kernel behind ``bwrap`` (bubblewrap builds the kernel's root from nothing: see
``autograder.sandboxes.sandbox``) or, where namespaces are refused, the kernel itself. In order:

1. join the kernel's control group (memory, processes, CPU), made by the grader;
2. resource limits that the group does not cover (the last fallback for memory is an
   address-space limit);
3. as root, when the sandbox user cannot traverse to a folder the kernel needs (an
   interpreter under ``/root``, mode 0700), make it visible in a mount namespace of
   this process alone: an empty read-only file system over the closed folder with only
   the needed folders bound into it, read-only. The host's permissions stay as they are;
4. without bubblewrap, a network namespace with nothing but loopback, if allowed;
5. as root, the student's own unprivileged user;
6. ``exec`` of COMMAND, with SIGINT ignored by bubblewrap's outer process (the grader
   interrupts a cell by signalling the process group; the kernel installs its own
   handler while it runs a cell).

What was enforced is written, as JSON, to the file the configuration names.
``--kill-all UID`` kills every process of that user. Only the standard library is used:
this runs before the kernel, in the grader's Python.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import signal
import stat
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_LIMITS = {
    "address_space": resource.RLIMIT_AS,
    "cpu_seconds": resource.RLIMIT_CPU,
    "processes": resource.RLIMIT_NPROC,
    "file_size": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
}


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unshare(flags: int) -> None:
    if _libc().unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc().mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                           data.encode() if data else None)
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def closed_ancestor(path: str, uid: int) -> str | None:
    """The topmost folder above ``path`` that ``uid`` cannot traverse, if any."""
    parts = os.path.abspath(path).split("/")[1:]
    for depth in range(1, len(parts)):
        folder = "/" + "/".join(parts[:depth])
        try:
            info = os.stat(folder)
        except OSError:
            return None
        if not (info.st_mode & stat.S_IXOTH) and info.st_uid != uid:
            return folder
    return None


def reveal(paths: list[str], uid: int) -> list[str]:
    """Make ``paths`` reachable by ``uid`` in a mount namespace of this process: every
    closed folder above them is covered by an empty tmpfs into which only ``paths`` are
    bound, read-only. Returns the closed folders so covered."""
    closed: dict[str, list[str]] = {}
    for path in paths:
        top = closed_ancestor(path, uid)
        if top is not None and os.path.isdir(path):
            closed.setdefault(top, []).append(path)
    if not closed:
        return []
    _unshare(CLONE_NEWNS)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    # opened in the new namespace (a mount of another namespace cannot be bound), before it is covered
    handles = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for group in closed.values() for path in group}
    for top, group in closed.items():
        _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for path in group:
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{handles[path]}", path, None, MS_BIND | MS_REC)
            _mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
    for handle in handles.values():
        os.close(handle)
    return sorted(closed)


def _cut_network(done: dict[str, Any]) -> None:
    """A network namespace with loopback only (without bubblewrap, which does its own)."""
    try:
        if os.geteuid() == 0:
            _unshare(CLONE_NEWNET)
        else:  # an unprivileged user namespace, mapping this user to itself
            uid, gid = os.getuid(), os.getgid()
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        done["network"] = "cut"
    except OSError as error:
        done["network"] = "open"
        done.setdefault("not_enforced", []).append(f"network: namespaces refused ({error.strerror})")


def enter(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the walls to this process; return what was enforced and why anything was not."""
    done: dict[str, Any] = dict(config.get("enforced") or {})
    done.setdefault("limits", {})
    root = os.geteuid() == 0
    for procs in config.get("cgroup_procs", []):
        _write(procs, str(os.getpid()))
    uid = config.get("uid")
    for name, value in (config.get("limits") or {}).items():
        if value is None:
            continue
        if name == "processes" and not uid:
            continue  # counted per user: without a user of its own it would count the grader's processes
        value = int(value)
        resource.setrlimit(_LIMITS[name], (value, value))
        done["limits"][name] = value
    if root and uid is not None and config.get("reveal"):
        try:
            covered = reveal(config["reveal"], uid)
        except OSError as error:
            raise SystemExit(f"[autograder] sandbox: cannot make the interpreter visible to uid {uid}: "
                             f"{error}") from None
        if covered:
            done["revealed"] = covered
    if config.get("cut_network"):
        _cut_network(done)
    if uid is not None and root:
        for path in config.get("own", []):
            if os.path.exists(path):
                os.chown(path, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    done["uid"] = os.getuid()
    os.umask(0o077)
    return done


def _kill_all(uid: int) -> int:
    if uid == 0:
        return 2
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.kill(-1, signal.SIGKILL)  # every process of this user, this one included
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--kill-all"]:
        return _kill_all(int(argv[1]))
    with open(argv[0]) as handle:
        config = json.load(handle)
    command = argv[argv.index("--") + 1:]
    delay = float(config.get("start_delay_s") or 0)
    if delay:  # a simulated slow start (tests of the grader's start timeout)
        time.sleep(delay)
    done = enter(config)
    if config.get("report"):
        _write(config["report"], json.dumps(done))
    if config.get("log"):  # the kernel's own stdout and stderr
        log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    if config.get("ignore_sigint"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.execv(command[0], command)
    except OSError as error:
        print(f"[autograder] sandbox: cannot start the kernel as uid {os.getuid()}: {command[0]}: {error.strerror}",
              file=sys.stderr)
        return 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
