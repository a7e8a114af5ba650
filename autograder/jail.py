"""Start a student's kernel behind the local sandbox's walls, then become it.

Run as ``python -m autograder.jail CONFIG.json -- KERNEL_ARGV...``. In this order, each step
as far as the operating system allows: a private mount namespace in which the grader's
secret folders are covered by empty read-only file systems; a network namespace with
no interface but loopback; resource limits; then, when started as root, the student's
own unprivileged user; and finally ``exec`` of the kernel. What was enforced is written,
as JSON, to the file the configuration names. ``--kill-all UID`` kills every process of
that user.

Only the standard library is used: this runs before the kernel, in the grader's Python.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
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


def enter(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the walls to this process; return what was enforced and why anything was not."""
    done: dict[str, Any] = {"uid": os.getuid(), "network": "open", "hidden": "visible", "limits": {}}
    root = os.geteuid() == 0
    wanted_ns = (CLONE_NEWNS if config.get("hide") else 0) | (CLONE_NEWNET if config.get("no_network") else 0)
    if wanted_ns:
        try:
            if root:
                _unshare(wanted_ns)
            else:  # an unprivileged user namespace, mapping this user to itself
                uid, gid = os.getuid(), os.getgid()
                _unshare(CLONE_NEWUSER | wanted_ns)
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{uid} {uid} 1")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
            if wanted_ns & CLONE_NEWNET:
                done["network"] = "cut"
            if wanted_ns & CLONE_NEWNS:
                _mount("none", "/", None, MS_REC | MS_PRIVATE)
                for path in config["hide"]:
                    if os.path.isdir(path):
                        _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
                done["hidden"] = "hidden"
        except OSError as error:
            done["why_not"] = f"namespaces unavailable ({error.strerror}); network and grader folders stay reachable"
    for name, value in (config.get("limits") or {}).items():
        if value is None:
            continue
        if name == "processes" and not config.get("uid"):
            continue  # counted per user: without a user of its own it would count the grader's processes
        value = int(value)
        resource.setrlimit(_LIMITS[name], (value, value))
        done["limits"][name] = value
    uid = config.get("uid")
    if uid is not None and root:
        for path in config.get("own", []):
            os.chown(path, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        done["uid"] = uid
    os.umask(0o077)
    return done


def main(argv: list[str]) -> int:
    if argv[:1] == ["--kill-all"]:
        uid = int(argv[1])
        if uid == 0:
            return 2
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        os.kill(-1, signal.SIGKILL)  # every process of this user, this one included
        return 0
    with open(argv[0]) as handle:
        config = json.load(handle)
    command = argv[argv.index("--") + 1:]
    done = enter(config)
    if config.get("report"):
        _write(config["report"], json.dumps(done))
    if config.get("log"):  # the kernel's own stdout and stderr, capped by the file-size limit
        log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    try:
        os.execv(command[0], command)
    except OSError as error:
        print(f"[autograder] cannot start the kernel as uid {os.getuid()}: {command[0]}: {error.strerror}",
              file=sys.stderr)
        return 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
