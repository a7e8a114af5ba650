"""A saved model file in a submission: the file a notebook names in a variable, and the
notebook's own loader called on it.

A notebook stores its trained model in a file and names the file in a variable
(``ROBUST_MODEL_PATH = "models/robust.pt"``), and defines a loader
(``load_robust_model(path)``). The submission's folder, with the files the student
submitted beside the notebook, is the kernel's working directory. ``saved_file`` reads the
variable in the kernel and requires a non-empty regular file under ``./<folder>`` of that
directory, after symlinks are resolved (a link in the folder to a file elsewhere is
elsewhere); ``expect_loadable`` calls the loader on the variable's value and requires it to
load (a ``torch.nn.Module``, by default). ``loaded_expression`` is the loaded model as an
expression for other probes (``attacks.robust_accuracy(nb, loaded_expression(...), ...)``).

Nothing here imports torch: only the probes, in the kernel, do.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ..checking import CheckFailed

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

#: The longest exception message of a loader that a reason quotes.
MESSAGE_LIMIT = 200

# The student's names are read in functions of their own that bind no local names: a local
# of the probe called like a student's name would hide it.
SAVED_PROBE = '''
def _subject():
    return __NAME__


def probe(folder):
    import os
    value = _subject()
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        return {"not_path": type(value).__module__ + "." + type(value).__qualname__}
    try:
        given = os.fsdecode(os.fspath(value))
    except Exception as error:
        return {"not_path": type(value).__module__ + "." + type(value).__qualname__ + " (" + str(error) + ")"}
    if not given:
        return {"given": given, "problem": "blank"}
    home = os.path.realpath(os.getcwd())
    base = os.path.normpath(os.path.join(home, folder))
    lexical = os.path.normpath(os.path.join(home, given))
    target = os.path.realpath(os.path.join(home, given))

    def within(path):
        try:
            return os.path.commonpath([base, path]) == base
        except ValueError:
            return False

    found = {"given": given, "target": target}
    if not within(target):
        return {**found, "problem": "outside", "linked": within(lexical)}
    found["path"] = os.path.relpath(target, home).replace(os.sep, "/")
    if not os.path.exists(target):
        return {**found, "problem": "missing"}
    if not os.path.isfile(target):
        return {**found, "problem": "directory" if os.path.isdir(target) else "special"}
    size = os.path.getsize(target)
    if size == 0:
        return {**found, "problem": "empty"}
    return {**found, "size": size}
'''

LOADABLE_PROBE = '''
def _loader():
    return __LOADER__


def _subject():
    return __NAME__


def probe(module, limit):
    loader, value = _loader(), _subject()
    if not callable(loader):
        return {"not_callable": type(loader).__module__ + "." + type(loader).__qualname__}
    try:
        loaded = loader(value)
    except Exception as error:
        try:
            text = " ".join(str(error).split())
        except Exception:
            text = ""
        return {"raised": type(error).__qualname__, "message": text[:limit] + ("..." if len(text) > limit else "")}
    kind = type(loaded).__module__ + "." + type(loaded).__qualname__
    if module:
        import torch
        if not isinstance(loaded, torch.nn.Module):
            return {"not_module": kind, "mapping": isinstance(loaded, dict)}
    return {"type": type(loaded).__name__}
'''

def _identifier(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise ValueError(f"{what} {value!r} is not a Python identifier")
    return value


def _folder(folder: str) -> str:
    """``folder``, a relative POSIX path without '..', normalised ('models', 'out/models', '.')."""
    if not isinstance(folder, str) or not folder or folder.startswith("/") or "\\" in folder or "\x00" in folder:
        raise ValueError(f"folder {folder!r} should be a relative path such as 'models'")
    parts = PurePosixPath(folder).parts
    if ".." in parts:
        raise ValueError(f"folder {folder!r} should not climb out with '..'")
    return "/".join(parts) or "."


def _shown(folder: str) -> str:
    return "the submission's folder" if folder == "." else f"./{folder}"


@dataclass(frozen=True)
class SavedFile:
    """A saved file as the kernel found it: ``path`` relative to the kernel's working
    directory (POSIX separators, symlinks resolved) and ``size`` in bytes."""

    path: str
    size: int


def _verdict(found: dict[str, Any], name: str, folder: str) -> SavedFile:
    where = _shown(folder)
    if "not_path" in found:
        raise CheckFailed(f"`{name}` should be the path of the saved model file (a str or a pathlib.Path), "
                          f"is a {found['not_path']}")
    given = str(found["given"])
    problem = found.get("problem")
    subject = f"`{name}` is {given!r}"
    if problem == "blank":
        raise CheckFailed(f"`{name}` is an empty string, which names no file: set it to the path of the saved model "
                          f"under {where}")
    if problem == "outside":
        if found.get("linked"):
            raise CheckFailed(f"{subject}, a link to {found['target']!r}, outside {where}: save the model file "
                              f"itself under {where}, as the handout asks")
        raise CheckFailed(f"{subject}, outside {where}: save the model under {where}, as the handout asks")
    if problem == "missing":
        raise CheckFailed(f"{subject}, which does not exist: save the trained model there and submit the file "
                          "with the notebook")
    if problem in ("directory", "special"):
        kind = "a directory" if problem == "directory" else "not a regular file"
        raise CheckFailed(f"{subject}, {kind}: it should name the saved model file")
    if problem == "empty":
        raise CheckFailed(f"{subject}, an empty file (0 bytes): the model was not saved into it")
    return SavedFile(str(found["path"]), int(found["size"]))


def saved_file(nb: KernelChannel, name: str, *, folder: str = "models") -> SavedFile:
    """The file the notebook's variable ``name`` (a str or os.PathLike) names, resolved
    against the kernel's working directory: a non-empty regular file under ``./<folder>``
    (after symlinks are resolved), else ``CheckFailed`` naming the variable, the path as
    given and what is wrong. Read once per grading for the same arguments."""
    key = ("saved", _identifier(name, "name"), _folder(folder))
    if key not in nb.memo:
        nb.memo[key] = nb.probe(SAVED_PROBE.replace("__NAME__", name), key[2])
    return _verdict(nb.memo[key], name, key[2])


def loaded_expression(loader: str, name: str) -> str:
    """``loader(name)``, the notebook's loader called on the variable naming the file: an
    expression for probes that take one (``attacks.robust_accuracy``)."""
    return f"{_identifier(loader, 'loader')}({_identifier(name, 'name')})"


def expect_loadable(nb: KernelChannel, loader: str, name: str, *, module: bool = True,
                    timeout: float | None = None) -> str:
    """Call the notebook's ``loader`` on the value of its variable ``name`` in the kernel;
    ``CheckFailed`` if the call raises (its exception's type and message, shortened) or, with
    ``module``, if what it returns is not a ``torch.nn.Module``. Returns the class name of
    what it returned. Called once per grading for the same arguments."""
    call = loaded_expression(loader, name)
    key = ("loadable", loader, name, bool(module))
    if key not in nb.memo:
        source = LOADABLE_PROBE.replace("__LOADER__", loader).replace("__NAME__", name)
        nb.memo[key] = nb.probe(source, bool(module), MESSAGE_LIMIT, timeout=timeout)
    found = nb.memo[key]
    if "not_callable" in found:
        raise CheckFailed(f"`{loader}` should be a function that loads the saved model, is a {found['not_callable']}")
    if "raised" in found:
        message = f": {found['message']}" if found.get("message") else ""
        raise CheckFailed(f"`{call}` raised {found['raised']}{message}; it should load the saved model")
    if "not_module" in found:
        hint = (" (a state_dict? build the model and load it with model.load_state_dict)"
                if found.get("mapping") else "")
        raise CheckFailed(f"`{call}` should return the trained model, a torch.nn.Module; it returned a "
                          f"{found['not_module']}{hint}")
    return str(found["type"])


__all__ = ["MESSAGE_LIMIT", "SavedFile", "expect_loadable", "loaded_expression", "saved_file"]
