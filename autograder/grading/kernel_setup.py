"""The grading kernel's set-up: what the courses' notebooks expect of the platform they ran
on (Colab, a lab machine), made harmless where grading cannot or need not do it.

Its source runs inside the student's kernel once, before the first cell (see
``install_source``), as ``wire`` does. It only makes the kernel behave like the students'
own; nothing in it is believed afterwards (the student's code can undo any of it, which
only changes the student's own run). What it covers, from real students' notebooks
(``../shared/assignments/real-courses.md``):

- ``%load_ext lab_black`` (nb-black), ``nb_black``, ``jupyter_black``: code formatters
  with no effect on what a cell does. Where the package is missing, an extension that
  does nothing stands in.
- ``%tensorboard --logdir logs``: the logs are written; no server is started and nothing
  waits for one.
- ``!pip install x`` / ``%pip install x``: a package already installed is reported as such
  (pip is not run: the network is off); one the environment lacks is reported once.
- ``import x`` of a module the environment lacks, at the top level of a cell: the cell goes
  on with its other imports, and the names the import would bind stand for the missing
  module, raising a clear ``ModuleNotFoundError`` where they are used. (The grader reads
  which modules are missing from the cells' source, not from the kernel.)
- Downloads of datasets (torchvision's ``download=True``) are served from the data the
  grader gave the kernel, as ``serve_downloads`` configures (the network stays off).
"""

from __future__ import annotations

import ast
import os
import shlex
import sys
import types
from pathlib import Path
from typing import Any

#: Name of the module the set-up is installed as, inside the kernel.
KERNEL_MODULE = "_autograder_setup"
_FILENAME = "<autograder-setup>"
_SAY = "[grading environment]"
_FORMATTERS = ("lab_black", "nb_black", "jupyter_black")
_PIP_OPTIONS_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
                           "-f", "--find-links", "-t", "--target", "--prefix", "--root", "-e", "--editable"}


class MissingModule:
    """Stands for a name an import of a missing module would have bound: any use raises."""

    def __init__(self, module: str, name: str) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_name", name)

    def _fail(self) -> ModuleNotFoundError:
        module, name = object.__getattribute__(self, "_module"), object.__getattribute__(self, "_name")
        error = ModuleNotFoundError(f"No module named '{module}' (not in the grading environment, so `{name}`, "
                                    "which its import binds, is not defined)")
        error.name = module
        return error

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        raise self._fail()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._fail()

    def __repr__(self) -> str:
        return f"<missing module {object.__getattribute__(self, '_module')}>"


_reported: set[str] = set()


def _say(text: str) -> None:
    print(f"{_SAY} {text}", file=sys.stderr, flush=True)


def missing(error: ModuleNotFoundError, namespace: dict[str, Any], names: list[str], module: str) -> None:
    """An import of ``module`` at a cell's top level failed: bind its ``names`` to stand-ins."""
    lacking = error.name or module
    for name in names:
        namespace[name] = MissingModule(lacking, name)
    if lacking not in _reported:
        _reported.add(lacking)
        stands = ", ".join(f"`{n}`" for n in names)
        _say(f"No module named '{lacking}': it is not in the grading environment; the cell goes on"
             + (f", and {stands} {'raises' if len(names) == 1 else 'raise'} an error where used" if names else ""))


def _bound(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    return [alias.asname or alias.name for alias in node.names if alias.name != "*"]


def _module_of(node: ast.Import | ast.ImportFrom) -> str:
    if isinstance(node, ast.Import):
        return node.names[0].name
    return "." * node.level + (node.module or "")


class _GuardImports(ast.NodeTransformer):
    """Wraps each import at a cell's top level so that a missing module does not stop it."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        body: list[ast.stmt] = []
        for statement in node.body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)) and not getattr(statement, "level", 0):
                body.append(self._guarded(statement))
            else:
                body.append(statement)
        node.body = body
        return node

    @staticmethod
    def _guarded(statement: ast.Import | ast.ImportFrom) -> ast.stmt:
        call = ast.parse(
            f"__import__({KERNEL_MODULE!r}).missing(_autograder_missing, globals(), "
            f"{_bound(statement)!r}, {_module_of(statement)!r})"
        ).body[0]
        handler = ast.ExceptHandler(type=ast.Name("ModuleNotFoundError", ast.Load()), name="_autograder_missing",
                                    body=[call])
        guarded = ast.Try(body=[statement], handlers=[handler], orelse=[], finalbody=[])
        return ast.fix_missing_locations(ast.copy_location(guarded, statement))


def _installed(requirement: str) -> bool:
    from importlib import metadata

    name = requirement
    for mark in "[<>=!~;@ ":
        name = name.split(mark)[0]
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def pip_line(arguments: str) -> None:
    """What ``pip ...`` does in grading: nothing is installed; say what is already there."""
    try:
        words = shlex.split(arguments)
    except ValueError:
        words = arguments.split()
    if "install" not in words:
        _say(f"`pip {arguments.strip()}` is not run in grading")
        return
    wanted: list[str] = []
    skip = False
    for word in words[words.index("install") + 1:]:
        if skip:
            skip = False
        elif word in _PIP_OPTIONS_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            wanted.append(word)
    have = [w for w in wanted if _installed(w)]
    lack = [w for w in wanted if not _installed(w)]
    if have:
        _say(f"already installed: {', '.join(have)}")
    if lack:
        _say(f"not in the grading environment (pip cannot install here, the network is off): {', '.join(lack)}")


def _system(original: Any) -> Any:
    def system(command: str) -> Any:
        words = command.split()
        head = [w for w in words[:4] if not w.startswith("-")]
        if head[:1] in (["pip"], ["pip3"]) or head[1:3] == ["-m", "pip"] or words[1:3] == ["-m", "pip"]:
            start = words.index("pip") + 1 if "pip" in words else 1
            return pip_line(" ".join(words[start:]))
        if head[:2] in (["conda", "install"], ["mamba", "install"]):
            return _say(f"`{command.strip()}` is not run in grading")
        return original(command)

    return system


def _no_extension(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__["load_ipython_extension"] = lambda shell: None
    module.__dict__["unload_ipython_extension"] = lambda shell: None
    return module


def _extensions(original: Any) -> Any:
    def load_extension(module: str) -> Any:
        if module == "tensorboard":  # its %tensorboard would start a server: the set-up's stays
            return None
        return original(module)

    return load_extension


def _tensorboard(line: str) -> None:
    _say(f"TensorBoard is not started in grading (%tensorboard {line.strip()}); the logs stay where they are")


def serve_downloads(served: dict[str, str]) -> None:
    """Answer torchvision's downloads from local files: ``served`` maps the end of the path
    torchvision saves a download to (``FashionMNIST/raw/train-images-idx3-ubyte.gz``, or a
    file name) to the file that answers it, whatever root the notebook chose. A served
    file counts as intact (the stand-ins are not the originals, byte for byte)."""
    if not served:
        return
    try:
        from torchvision.datasets import utils
    except Exception:  # no torchvision: nothing downloads through it
        return
    import shutil

    def source_for(target: Path) -> str | None:
        """The served file for ``target``: the longest key its path ends with."""
        path = target.as_posix()
        for key in sorted(served, key=len, reverse=True):
            if path == key or path.endswith("/" + key.lstrip("/")):
                return served[key]
        return None

    def download_url(url: str, root: str, filename: str | None = None, md5: str | None = None,
                     max_redirect_hops: int = 3) -> None:
        target = Path(os.path.expanduser(root)) / (filename or os.path.basename(url.split("?")[0]))
        source = source_for(target)
        if source is None:
            raise RuntimeError(f"{url} cannot be downloaded in grading (the network is off), and the grader "
                               "serves no file for it")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return
        if target.suffix == ".gz" and not source.endswith(".gz"):  # served as fetched: gzipped
            import gzip

            with open(source, "rb") as plain, gzip.open(target, "wb", compresslevel=1) as packed:
                shutil.copyfileobj(plain, packed)
        else:
            target.symlink_to(source)

    intact = utils.check_integrity

    def check_integrity(fpath: str, md5: str | None = None) -> bool:
        source = source_for(Path(fpath))
        if source is not None and os.path.isfile(fpath):  # what the grader served, or an earlier copy of it
            return True
        return bool(intact(fpath, md5))

    utils.download_url = download_url
    utils.check_integrity = check_integrity
    for module in list(sys.modules.values()):  # the dataset modules imported the names themselves
        if getattr(module, "__name__", "").startswith("torchvision.datasets."):
            for name, replacement in (("download_url", download_url), ("check_integrity", check_integrity)):
                if getattr(module, name, None) is not None:
                    setattr(module, name, replacement)


def set_up(served: dict[str, str] | None = None) -> None:
    """Make the kernel behave like the students' platform (see the module's text)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    for name in _FORMATTERS:
        try:
            __import__(name)
        except Exception:
            sys.modules[name] = _no_extension(name)
    shell.extension_manager.load_extension = _extensions(shell.extension_manager.load_extension)
    shell.register_magic_function(_tensorboard, "line", "tensorboard")
    shell.register_magic_function(pip_line, "line", "pip")
    shell.register_magic_function(lambda line: _say(f"`conda {line.strip()}` is not run in grading"), "line",
                                  "conda")
    shell.system = _system(shell.system)
    shell.ast_transformers.append(_GuardImports())
    serve_downloads(served or {})


def install_source(served: dict[str, str] | None = None) -> str:
    """Code that installs this module inside a kernel and sets the kernel up."""
    source = Path(__file__).read_text(encoding="utf-8")
    return (
        "import sys as _s, types as _t\n"
        f"_m = _t.ModuleType({KERNEL_MODULE!r})\n"
        f"_s.modules[{KERNEL_MODULE!r}] = _m\n"
        f"exec(compile({source!r}, {_FILENAME!r}, 'exec'), _m.__dict__)\n"
        f"_m.set_up({dict(served or {})!r})\n"
        "del _s, _t, _m\n"
    )
