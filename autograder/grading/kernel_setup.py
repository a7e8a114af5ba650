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
- Downloads of datasets (torchvision's ``download=True``, the ``emnist`` package's cache)
  and of pretrained weights (torchvision's weight enums, through torch.hub; Hugging Face's
  ``from_pretrained``) are served from the data the grader gave the kernel, as
  ``serve_downloads``, ``serve_hub`` and ``serve_huggingface`` configure (the network stays
  off).
- Optimisers made inside functions (``train_model(config)`` keeps its own): each torch
  optimiser the run makes is noted, so that a check can find the one of a network after
  the function returned (``optimizer_for``); nothing is kept alive that the notebook let go.
"""

from __future__ import annotations

import ast
import os
import shlex
import sys
import types
import weakref
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


class _AfterImport:
    """An import finder that runs a function on a module right after its first import, before
    the importer gets it (so names copied from it, ``from .utils import download_url``, are
    the changed ones), and context managers around that import (``around``). The modules
    stay unimported until the notebook imports them: torch and torchvision cost seconds a
    notebook that never uses them should not pay."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[Any]] = {}
        self.around: dict[str, list[Any]] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.waiting and name not in self.around:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ThenRun(spec.loader, self.waiting.pop(name, []), self.around.pop(name, []))
        return spec


class _ThenRun:
    """A loader that loads as ``loader`` does, inside ``around`` (context managers), then
    runs ``functions`` on the module."""

    def __init__(self, loader: Any, functions: list[Any], around: list[Any] | None = None) -> None:
        self.loader, self.functions, self.around = loader, functions, around or []

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        import contextlib

        with contextlib.ExitStack() as stack:
            for manager in self.around:
                stack.enter_context(manager())
            self.loader.exec_module(module)
        for function in self.functions:
            try:
                function(module)
            except Exception as error:  # the student's import goes on; only the serving is lost
                _say(f"{module.__name__}: the grader could not set it up ({type(error).__name__}: {error})")

    def __getattr__(self, name: str) -> Any:  # the rest of the loader's interface (get_source, is_package)
        return getattr(self.loader, name)


_HOOK = _AfterImport()


def after_import(name: str, function: Any) -> None:
    """Run ``function`` on module ``name`` once it is imported: now if it already is."""
    if name in sys.modules:
        function(sys.modules[name])
        return
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
    _HOOK.waiting.setdefault(name, []).append(function)


def around_import(name: str, manager: Any) -> None:
    """Import module ``name``, when the notebook first does, inside ``manager()``."""
    if name in sys.modules:
        return
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
    _HOOK.around.setdefault(name, []).append(manager)


#: torchvision imports one function of ``torch._dynamo.utils`` (``is_compile_supported``,
#: which ``roi_align`` calls only when it runs), and importing that module takes
#: ``torch._dynamo`` and sympy with it: a second of every kernel's start (as much again
#: as torch itself) that no notebook here uses. The function is lent a stand-in that
#: imports the real one when first called; ``torch._dynamo`` itself stays unimported
#: until something asks for it, as with torch alone.
_DYNAMO_UTILS = "torch._dynamo.utils"


def _is_compile_supported(device_type: Any) -> Any:
    import importlib

    return importlib.import_module(_DYNAMO_UTILS).is_compile_supported(device_type)


class _LentDynamoUtils:
    """While ``torchvision.ops.roi_align`` imports, ``torch._dynamo.utils`` is a stand-in
    holding only ``is_compile_supported`` (unless torch._dynamo is imported already);
    afterwards the name is free again, for the real module."""

    def __enter__(self) -> None:
        self.lent = None
        if "torch._dynamo" not in sys.modules and _DYNAMO_UTILS not in sys.modules:
            self.lent = types.ModuleType(_DYNAMO_UTILS, "lent by the grading kernel's set-up, while torchvision "
                                                        "imports; the real module loads when used")
            self.lent.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
            sys.modules[_DYNAMO_UTILS] = self.lent

    def __exit__(self, *exc: Any) -> None:
        if self.lent is not None and sys.modules.get(_DYNAMO_UTILS) is self.lent:
            del sys.modules[_DYNAMO_UTILS]


def _emnist_on_numpy_2(module: Any) -> None:
    """The ``emnist`` package (last released in 2019) reads an IDX header with ``int()`` of a
    one-element array, which numpy 2 refuses: its reader, written for both."""
    import numpy

    def parse_idx(data: bytes) -> Any:
        data = bytes(data)
        if data[0] != 0 or data[1] != 0:
            raise ValueError("Data is not in IDX format.")
        kind = module.IDX_DATA_TYPE_CODES.get(data[2])
        if kind is None:
            raise ValueError(f"Unrecognized data type code {hex(data[2])}. Is the data in IDX format?")
        dims = data[3]
        shape = tuple(int.from_bytes(data[4 * (d + 1):4 * (d + 2)], "big") for d in range(dims))
        return numpy.frombuffer(data[4 * (dims + 1):], dtype=numpy.dtype(kind).newbyteorder(">")).reshape(shape)

    module.parse_idx = parse_idx


def serve_downloads(served: dict[str, str]) -> None:
    """Answer torchvision's downloads from local files: ``served`` maps the end of the path
    torchvision saves a download to (``FashionMNIST/raw/train-images-idx3-ubyte.gz``, or a
    file name) to the file that answers it, whatever root the notebook chose. An archive
    (``stl10_binary.tar.gz``) may be answered by what it unpacks to, a folder or a file,
    which is then linked where the archive would have unpacked it; ``/./`` in its path marks
    where the archive's own paths begin (``.../gtsrb/./GTSRB/Training``, as rsync marks it),
    and without one the archive holds it under its own name. A served file, and any
    file in a served folder, counts as intact (the stand-ins are not the originals, byte for
    byte; what a served folder lacks, as STL10's unlabelled images, is not needed). A key
    ``python:module.ATTRIBUTE`` sets a package's own download path (``emnist``'s cache) to
    the served file instead."""
    for key, source in served.items():  # a package's own download, pointed at the served file
        if key.startswith("python:"):
            package, _, attribute = key.removeprefix("python:").rpartition(".")
            after_import(package, lambda module, attribute=attribute, source=source: _point(module, attribute, source))
    served = {key: source for key, source in served.items() if not key.startswith("python:")}
    if served:
        after_import("torchvision.datasets.utils", lambda utils: _answer_downloads(utils, served))


def _point(module: Any, attribute: str, source: str) -> None:
    setattr(module, attribute, source)
    if module.__name__ == "emnist":
        _emnist_on_numpy_2(module)


def _answer_downloads(utils: Any, served: dict[str, str]) -> None:
    """torchvision's download helpers (``utils``) answering from ``served``."""

    def source_for(target: Path) -> str | None:
        """The served file for ``target``: the longest key its path ends with."""
        path = target.as_posix()
        for key in sorted(served, key=len, reverse=True):
            if path == key or path.endswith("/" + key.lstrip("/")):
                return served[key]
        return None

    def unpacked(source: str, archive: Path) -> bool:
        """Whether ``source`` answers ``archive`` with what it unpacks to: a folder, or a file that
        is no archive of that kind (FashionMNIST's IDX file for its ``.gz``)."""
        kinds = (".zip", ".tar", ".gz", ".tgz", ".xz", ".bz2")
        return os.path.isdir(source) or (archive.suffix in kinds and Path(source).suffix != archive.suffix)

    def download_url(url: str, root: str, filename: str | None = None, md5: str | None = None,
                     max_redirect_hops: int = 3) -> None:
        target = Path(os.path.expanduser(root)) / (filename or os.path.basename(url.split("?")[0]))
        source = source_for(target)
        if source is None:
            raise RuntimeError(f"{url} cannot be downloaded in grading (the network is off), and the grader "
                               "serves no file for it")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() and not unpacked(source, target):  # an unpacked answer: extract_archive links it
            target.symlink_to(source)

    unpack = utils.extract_archive

    def extract_archive(from_path: str, to_path: str | None = None, remove_finished: bool = False) -> str:
        source = source_for(Path(from_path))
        if source is None or not unpacked(source, Path(from_path)):
            return str(unpack(from_path, to_path, remove_finished))
        inside = source.split("/./", 1)[1] if "/./" in source else Path(source).name  # what the archive holds
        into = Path(to_path or os.path.dirname(from_path))
        placed = into / inside
        placed.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(placed):
            placed.symlink_to(source, target_is_directory=os.path.isdir(source))
        return str(into)

    folders = [os.path.realpath(source) + os.sep for source in served.values() if os.path.isdir(source)]
    intact = utils.check_integrity

    def check_integrity(fpath: str, md5: str | None = None) -> bool:
        source = source_for(Path(fpath))
        if source is not None and os.path.isfile(fpath):  # what the grader served, or an earlier copy of it
            return True
        if any(os.path.realpath(fpath).startswith(folder) for folder in folders):  # in a served folder
            return True
        return bool(intact(fpath, md5))

    replacements = {"download_url": download_url, "check_integrity": check_integrity,
                    "extract_archive": extract_archive}
    for name, replacement in replacements.items():
        setattr(utils, name, replacement)
    for module in list(sys.modules.values()):  # the dataset modules imported the names themselves
        if getattr(module, "__name__", "").startswith("torchvision.datasets."):
            for name, replacement in replacements.items():
                if getattr(module, name, None) is not None:
                    setattr(module, name, replacement)


#: The optimisers the run made, in order: their class, the ids of each
#: group's parameters, the groups while the optimiser lives (its own list, which a
#: scheduler's dropped rate changes) and their last settings once it is gone.
MADE: list[dict[str, Any]] = []
_WATCHED: dict[str, Any] = {}


def _note(optimizer: Any) -> None:
    record = {"type": type(optimizer), "defaults": dict(optimizer.defaults),
              "ids": [[id(p) for p in group["params"]] for group in optimizer.param_groups],
              "groups": optimizer.param_groups, "settings": None, "alive": weakref.ref(optimizer)}

    def gone() -> None:  # the last settings kept, the parameters let go
        record["settings"] = [{k: v for k, v in group.items() if k != "params"} for group in record["groups"]]
        record["groups"] = None

    weakref.finalize(optimizer, gone)
    MADE.append(record)


def watch_optimizers(*_: Any) -> None:
    """Note every torch optimiser made from now on (once torch is imported: run before and
    after each cell)."""
    torch = sys.modules.get("torch")
    optim = getattr(torch, "optim", None) if torch is not None else None
    if optim is None or "init" in _WATCHED:
        return
    original = _WATCHED["init"] = optim.Optimizer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            _note(self)
        except Exception:  # an optimiser of the student's own making: not noted
            pass

    optim.Optimizer.__init__ = __init__


def optimizer_for(module: Any) -> Any:
    """The last optimiser the run made over all of ``module``'s trainable parameters: itself
    while it lives, else one of its class rebuilt over those parameters with its groups'
    last settings (no state); None if the run made none."""
    import gc

    gc.collect()  # an optimiser in a reference cycle (a scheduler's) is let go now
    owned = {id(p): p for p in module.parameters() if p.requires_grad}
    for record in reversed(MADE):
        if not owned or not set(owned) <= {i for ids in record["ids"] for i in ids}:
            continue
        live = record["alive"]()
        if live is not None:
            return live
        settings = record["settings"] or [{k: v for k, v in group.items() if k != "params"}
                                          for group in record["groups"] or []]
        groups = [{**setting, "params": [owned[i] for i in ids if i in owned]}
                  for setting, ids in zip(settings, record["ids"])]
        rebuilt = record["type"].__new__(record["type"])
        _WATCHED["init"](rebuilt, [group for group in groups if group["params"]], dict(record["defaults"]))
        return rebuilt
    return None


def serve_hub(served: dict[str, str]) -> None:
    """Pretrained weights torch.hub would download (torchvision's weight enums:
    ``resnet18(weights="IMAGENET1K_V1")`` fetches ``resnet18-f37072fd.pth``): a key
    ``torch.hub:<file name>`` answers that file. The kernel's hub folder (``TORCH_HOME``)
    holds them, so they load as if downloaded before; what is not served would need the
    network, which stays off."""
    files = {key.removeprefix("torch.hub:"): source for key, source in served.items()
             if key.startswith("torch.hub:") and os.path.isfile(source)}
    if not files:
        return
    import tempfile

    try:
        checkpoints = Path(tempfile.mkdtemp(prefix="torch-home-")) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        for name, source in files.items():
            (checkpoints / name).symlink_to(source)
    except OSError as error:  # no writable temporary folder: the weights are not served
        _say(f"pretrained weights cannot be served here ({error})")
        return
    os.environ["TORCH_HOME"] = str(checkpoints.parent.parent)


#: The revision every served Hugging Face repository is cached at (any 40 hex digits do).
_HF_REVISION = "0" * 40


def serve_huggingface(served: dict[str, str]) -> None:
    """Models Hugging Face's ``from_pretrained("google/vit-base-patch16-224-in21k")`` would
    download: a key ``huggingface:<repo id>`` answers it with a folder as ``save_pretrained``
    writes one (``config.json``, ``model.safetensors``, a processor's config). The kernel's
    hub cache (``HF_HUB_CACHE``) holds those folders in the hub's own layout, and the hub is
    told it is offline (always: the network is off, so a repository that is not served fails
    at once with the hub's own message instead of after retries)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    repos = {key.removeprefix("huggingface:"): source for key, source in served.items()
             if key.startswith("huggingface:") and os.path.isdir(source)}
    if not repos:
        return
    import tempfile

    try:
        cache = Path(tempfile.mkdtemp(prefix="hf-hub-"))
        for repo, source in repos.items():
            folder = cache / ("models--" + repo.replace("/", "--"))
            snapshot = folder / "snapshots" / _HF_REVISION
            snapshot.mkdir(parents=True)
            (folder / "refs").mkdir()
            (folder / "refs" / "main").write_text(_HF_REVISION, encoding="utf-8")
            for path in Path(source).iterdir():
                (snapshot / path.name).symlink_to(path)
    except OSError as error:  # no writable temporary folder: the models are not served
        _say(f"pretrained models cannot be served here ({error})")
        return
    os.environ["HF_HUB_CACHE"] = str(cache)


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
    shell.events.register("pre_run_cell", watch_optimizers)
    shell.events.register("post_run_cell", watch_optimizers)
    around_import("torchvision.ops.roi_align", _LentDynamoUtils)
    serve_hub(served or {})
    serve_huggingface(served or {})
    serve_downloads({key: source for key, source in (served or {}).items()
                     if not key.startswith(("torch.hub:", "huggingface:"))})


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
