"""Finding the student's object for a name a check reads.

Real students follow their course's starter, not the project's template: they name their
models and functions freely. The rubric says what each name the checks read must be
(``NameSpec``: a module mapping the handout's input to its output, a function of so many
arguments, an optimiser of a given module, a value) and the aliases students use. When a
check asks for a name the notebook does not define, the channel asks the ``Binder``, which
tries, in order: the marker's binding for this submission (``bindings.yaml`` beside its
results), the aliases, then (modules and optimisers only) the one object of the notebook
that fits by kind and behaviour. What it binds is said in the item's reason and the
grade's findings ("graded `net`, a SmallCNN, as `shallow_cnn`").

Which objects fit is asked of the kernel (a probe lists them and runs each module on a
grader batch), but only to choose what to grade: every verdict is still the check's own
measurement. Numbers and other values are bound by name only, never by value. Where
nothing fits, or several objects fit alike, a notebook written against another starter
has the item referred to a marker with the candidates listed (``Referred``); a notebook
that follows the template and lacks the name fails the item as before.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..checks.frameworks import KERAS_PRELUDE
from ..course.rubric import NameSpec
from ..errors import NotDefined, Referred, SubmissionError
from .kernel_setup import KERNEL_MODULE
from .names import bound_names

#: The marker's file of names bound by hand for one submission, in its results folder.
BINDINGS_FILE = "bindings.yaml"

CANDIDATES_PROBE = KERAS_PRELUDE + '''
def probe(kind, inputs, of, reserved):
    import inspect
    import sys
    import types
    torch = sys.modules.get("torch")
    scope = globals()
    skip = {"In", "Out", "get_ipython", "exit", "quit", "probe", *reserved}

    def number_of(value):
        try:
            if _is_keras_model(value):
                return int(value.count_params())
            return int(sum(p.numel() for p in value.parameters()))
        except Exception:
            return None

    def forward(module, shape):
        if _is_keras_model(module):
            import numpy as np
            try:
                out = _keras_outputs(module, np.random.default_rng(0).normal(size=(2, *shape)), 2)
            except Exception:
                return None
            return int(out.size // 2) if out.ndim and out.shape[0] == 2 else None
        first = next(iter(module.parameters()), None)
        device = first.device if first is not None else "cpu"
        dtype = first.dtype if first is not None and first.dtype.is_floating_point else torch.float32
        modes = [(m, m.training) for m in module.modules()]
        try:
            module.eval()
            with torch.no_grad():
                out = module(torch.randn(2, *shape, device=device, dtype=dtype))
        except Exception:
            return None
        finally:
            for m, mode in modes:
                m.training = mode
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        if hasattr(out, "logits"):
            out = out.logits
        if not hasattr(out, "numel") or out.dim() == 0 or out.shape[0] != 2:
            return None
        return int(out.numel() // 2)

    def params_of(value):
        try:
            return {id(p) for group in value.param_groups for p in group["params"]}
        except Exception:
            return set()

    target = None
    if of:
        try:
            target = {id(p) for p in eval(of, scope).parameters()}
        except Exception:
            target = None

    def consider(expression, value, found):
        kind_name = type(value).__qualname__
        entry = {"expression": expression, "type": kind_name, "identity": id(value)}
        if kind == "module":
            if not _is_keras_model(value) and (torch is None or not isinstance(value, torch.nn.Module)):
                return
            entry["params"] = number_of(value)
            entry["outputs"] = [forward(value, shape) for shape in inputs]
        elif kind == "optimizer":
            if torch is None or not isinstance(value, torch.optim.Optimizer):
                return
            entry["covers"] = bool(target) and target <= params_of(value)
        elif kind == "function":
            if not callable(value) or isinstance(value, type):
                return
            imported = isinstance(value, (types.FunctionType, types.BuiltinFunctionType))
            if imported and getattr(value, "__module__", None) != "__main__":
                return
            entry["module"] = torch is not None and isinstance(value, torch.nn.Module)
            called = value.forward if entry["module"] else value
            try:
                parameters = list(inspect.signature(called).parameters.values())
            except (TypeError, ValueError):
                return
            positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            entry["required"] = sum(1 for p in positional if p.default is p.empty)
            entry["most"] = None if any(p.kind == p.VAR_POSITIONAL for p in parameters) else len(positional)
        elif isinstance(value, (types.ModuleType, types.FunctionType, type)) or callable(value):
            return
        found.append(entry)

    def made_in_a_function(found):
        """An optimiser a function made for the module ``of`` (``train_model(config)``), which
        no name holds after the run: the kernel's set-up noted it."""
        setup = sys.modules.get("__SETUP__")
        if setup is None or any(entry.get("covers") for entry in found):
            return
        try:
            made = setup.optimizer_for(eval(of, scope))
        except Exception:
            return
        if made is not None:
            optimizer = made
            kept = get_ipython().user_ns.setdefault("_optimizers_made", [])  # the grader's name for it
            kept.append(optimizer)
            found.append({"expression": f"_optimizers_made[{len(kept) - 1}]", "type": type(optimizer).__qualname__,
                          "identity": id(optimizer), "covers": True,
                          "shown": f"the {type(optimizer).__qualname__} a function made for `{of}` (no name "
                                   "holds it after the run)"})

    found = []
    for name, value in list(scope.items()):
        if name.startswith("_") or name in skip or isinstance(value, types.ModuleType):
            continue
        if type(value).__name__ == "MissingModule":
            continue
        consider(name, value, found)
        if kind in ("module", "optimizer"):
            if isinstance(value, dict) and len(value) <= 64:
                for key, item in value.items():
                    if isinstance(key, (int, str)):
                        consider(f"{name}[{key!r}]", item, found)
            elif isinstance(value, (list, tuple)) and len(value) <= 64:
                for index, item in enumerate(value):
                    consider(f"{name}[{index}]", item, found)
    if kind == "optimizer" and target:
        made_in_a_function(found)
    return found
'''.replace("__SETUP__", KERNEL_MODULE)

_WHAT = {"module": "module", "function": "function", "optimizer": "optimiser", "value": "value"}


@dataclass(frozen=True)
class Binding:
    """A name a check reads, bound to the student's object."""

    name: str  # the template's name
    target: str  # the student's expression, evaluated in the kernel
    type: str = ""  # the class of what it holds
    how: str = ""  # why this one: a marker's binding, an alias, or the one that fits
    identity: int = 0  # the object's id in the kernel (0: not known)
    shown: str = ""  # what it is, in words, where no name of the student's holds it

    def sentence(self) -> str:
        if self.shown:
            return f"graded {self.shown} as `{self.name}` ({self.how})"
        what = f", a {self.type}," if self.type else ""
        return f"graded `{self.target}`{what} as `{self.name}` ({self.how})"


@dataclass
class Candidate:
    expression: str
    type: str
    fits: bool
    params: int | None = None
    identity: int = 0  # the object's id in the kernel: two names of one object are one candidate
    module: bool = False  # a torch module (a network, or a transform written as one)
    words: str = ""  # what it is, where no name of the student's holds it

    @property
    def head(self) -> str:
        return re.split(r"[.\[]", self.expression, maxsplit=1)[0]

    def shown(self) -> str:
        return self.words or f"`{self.expression}` (a {self.type})"


def valid_target(expression: str) -> bool:
    """A name, with attributes and constant subscripts: ``net``, ``models[16]``, ``nets['ae'].encoder``."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return False
    while True:
        if isinstance(tree, ast.Name):
            return True
        if not (isinstance(tree, ast.Attribute)
                or isinstance(tree, ast.Subscript) and isinstance(tree.slice, ast.Constant)):
            return False
        tree = tree.value


def load_bindings(folder: Path) -> dict[str, str]:
    """The marker's bindings for one submission (``bindings.yaml`` in its results folder):
    ``{template name: the student's expression}``; empty when there is no file. A file that
    is not such a mapping is refused with its path and what is wrong."""
    path = folder / BINDINGS_FILE
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SubmissionError(f"{path}: not readable YAML ({error})") from None
    if not isinstance(raw, dict):
        raise SubmissionError(f"{path}: should map each name a check reads to the student's name for it, e.g. "
                              "`shallow_cnn: net`")
    bindings: dict[str, str] = {}
    for name, target in raw.items():
        if not (isinstance(name, str) and name.isidentifier()):
            raise SubmissionError(f"{path}: {name!r} is not a name")
        if not (isinstance(target, str) and valid_target(target)):
            raise SubmissionError(f"{path}: {name}: {target!r} should be a name of the notebook, such as `net` or "
                                  "`models[16]`")
        bindings[name] = target
    return bindings


def _matches(alias: str, candidate: Candidate) -> bool:
    if "*" not in alias:
        return candidate.expression == alias
    pattern = alias.lower()
    return any(fnmatch.fnmatchcase(text.lower(), pattern)
               for text in (candidate.head, candidate.type, candidate.expression))


def rebound_names(sources: list[str]) -> dict[str, list[int]]:
    """The names several code cells bind (cells numbered from 1), with those cells."""
    cells: dict[str, list[int]] = {}
    for number, source in enumerate(sources, start=1):
        for name in bound_names(source):
            cells.setdefault(name, []).append(number)
    return {name: numbers for name, numbers in cells.items() if len(numbers) > 1}


def follows_template(sources: list[str], names: Mapping[str, NameSpec], template: list[str] | None = None) -> bool:
    """Whether a notebook follows the project's template: it binds at least half of the
    names its questions' checks read, or keeps a third of the template's code cells as they
    are (the template itself, handed in blank, binds none of them). A notebook written
    against the course's own starter does neither."""
    if not names:
        return True
    bound = set().union(*(bound_names(source) for source in sources)) if sources else set()
    if 2 * sum(1 for name in names if name in bound) >= len(names):
        return True
    kept = {" ".join(source.split()) for source in sources}
    cells = [" ".join(source.split()) for source in template or [] if source.strip()]
    return bool(cells) and 3 * sum(1 for cell in cells if cell in kept) >= len(cells)


#: Lists the kernel's candidates: ``(kind, input shapes, of, reserved names) -> [entry]``.
Lister = Callable[[str, list[list[int]], str, list[str]], Awaitable[list[dict[str, Any]]]]


@dataclass
class Binder:
    """Binds the names of one notebook's checks to the student's objects (see the module)."""

    notebook: str
    specs: Mapping[str, NameSpec]
    overrides: Mapping[str, str] = field(default_factory=dict)
    follows: bool = True
    reserved: frozenset[str] = frozenset()  # the grader's own names in the kernel (its parameters): never candidates
    rebound: Mapping[str, list[int]] = field(default_factory=dict)  # names several cells bind -> those cells
    bound: dict[str, Binding] = field(default_factory=dict)
    vetted: set[str] = field(default_factory=set)

    async def vet(self, name: str, listed: Lister) -> Binding | None:
        """In a notebook written against another starter, the template's name of a module may
        be the student's too and hold something else (``model``, rebound to the next task's
        network): where what it holds does not fit, the one that does is bound in its place
        (``Referred`` when none or several do). None: the name is taken as it is."""
        spec = self.specs.get(name)
        if (self.follows or name in self.vetted or name in self.bound or spec is None or spec.kind != "module"
                or not spec.input):
            return None
        self.vetted.add(name)
        entries = await listed(spec.kind, spec.input, "", sorted({*self.specs, *self.reserved} - {name}))
        own = [self._candidate(spec, entry) for entry in entries if entry.get("expression") == name]
        if not own or own[0].fits:
            return None
        others = [self._candidate(spec, entry) for entry in entries if entry.get("expression") != name]
        chosen, why, close = self._choose(name, spec, others)
        if chosen is None:
            self._refuse(name, spec, close, "")
        assert chosen is not None
        binding = Binding(name, chosen.expression, chosen.type,
                          f"{why}; the notebook's own `{name}`, a {own[0].type}, does not fit", chosen.identity,
                          chosen.words)
        self.bound[name] = binding
        return binding

    async def resolve(self, name: str, listed: Lister, hint: str = "") -> Binding:
        """The binding of ``name``; ``NotDefined`` when a notebook that follows the template
        lacks it, ``Referred`` when one written otherwise has nothing, or several things, that fit."""
        if name in self.bound:
            return self.bound[name]
        if name in self.overrides:
            binding = Binding(name, self.overrides[name], how=f"bound by a marker in {BINDINGS_FILE}")
            self.bound[name] = binding
            return binding
        spec = self.specs.get(name)
        if spec is None and not self.follows:  # a name of the template's the rubric says nothing of
            raise Referred(f"the check needs `{name}`, a name of the project's template that {self.notebook}, "
                           "written against another starter, does not have and the rubric does not describe: a "
                           f"marker grades this item, or binds the name in {BINDINGS_FILE} beside the results "
                           "and grades the submission again")
        if spec is None:
            raise NotDefined(name, self.notebook, hint)
        of = ""
        if spec.of:
            of = (await self.resolve(spec.of, listed, hint="")).target if spec.of else ""
        entries = await listed(spec.kind, spec.input, of, sorted({*self.specs, *self.reserved}))
        candidates = [self._candidate(spec, entry) for entry in entries]
        chosen, why, close = self._choose(name, spec, candidates)
        if chosen is None:
            self._refuse(name, spec, close, hint)
        assert chosen is not None
        binding = Binding(name, chosen.expression, chosen.type, why, chosen.identity, chosen.words)
        self.bound[name] = binding
        return binding

    @staticmethod
    def _candidate(spec: NameSpec, entry: dict[str, Any]) -> Candidate:
        fits = True
        if spec.kind == "module" and spec.input:
            fits = spec.output in (entry.get("outputs") or [])
        elif spec.kind == "optimizer" and spec.of:
            fits = bool(entry.get("covers"))
        elif spec.kind == "function" and spec.args is not None:
            most = entry.get("most")
            fits = int(entry.get("required", 0)) <= spec.args and (most is None or spec.args <= int(most))
        params, identity = entry.get("params"), entry.get("identity")
        return Candidate(str(entry["expression"]), str(entry.get("type", "")), fits,
                         int(params) if isinstance(params, int) else None,
                         int(identity) if isinstance(identity, int) else 0,
                         spec.kind == "module" or bool(entry.get("module")), str(entry.get("shown", "")))

    def _rivals(self, name: str, candidate: Candidate) -> list[str]:
        """The aliases of the other names that could hold ``candidate``: of its own kind, or
        of a module's where it is one (a network named like a transform is the network's)."""
        kind = self.specs[name].kind
        return [alias for other, spec in self.specs.items() if other != name
                and (spec.kind == kind or spec.kind == "module" and candidate.module) for alias in spec.aliases]

    def _claimed(self, name: str, candidate: Candidate, claimed: set[int]) -> bool:
        """Whether another name's aliases, or a binding already made, claim ``candidate`` (or
        the object it names: ``claimed`` holds the ids of the objects others claim)."""
        if candidate.identity and candidate.identity in claimed:
            return True
        if any(b.target == candidate.expression for n, b in self.bound.items() if n != name):
            return True
        if self.specs[name].kind == "optimizer" and self.specs[name].of:  # decided by what it updates
            return False
        return any(_matches(alias, candidate) for alias in self._rivals(name, candidate))

    def _overwritten(self, spec: NameSpec, candidate: Candidate) -> bool:
        """A value bound by its name (never by what it holds) whose name several code cells
        bind holds the last one's after the run: 1.3's `h1` is not 1.2's, so nothing is sure."""
        return spec.kind == "value" and candidate.head in self.rebound

    @staticmethod
    def _distinct(candidates: list[Candidate]) -> list[Candidate]:
        """One candidate per object (a loop's leftover `m` is the model it last held): the most
        telling of its names, the longest."""
        kept: dict[int, Candidate] = {}
        for candidate in candidates:
            key = candidate.identity or id(candidate)
            if key not in kept or len(candidate.head) > len(kept[key].head):
                kept[key] = candidate
        return [c for c in candidates if kept.get(c.identity or id(c)) is c]

    def _choose(self, name: str, spec: NameSpec,
                candidates: list[Candidate]) -> tuple[Candidate | None, str, list[Candidate]]:
        decided = spec.kind == "optimizer" and bool(spec.of)  # by what it updates, not by others' aliases
        claimed = {c.identity for c in candidates if c.identity and not decided
                   and any(_matches(a, c) for a in self._rivals(name, c))
                   and not any(_matches(a, c) for a in spec.aliases)}
        claimed |= {b.identity for n, b in self.bound.items() if n != name and b.identity}
        fitting = [c for c in candidates if c.fits]
        for alias in (a for a in spec.aliases if "*" not in a):  # exact aliases, in the rubric's order
            exact = [c for c in fitting if c.expression == alias]
            if exact:
                if self._overwritten(spec, exact[0]):
                    return None, "", exact[:1]
                return exact[0], f"`{alias}` is a name students give it", []
        named = self._distinct([c for c in fitting if any(_matches(alias, c) for alias in spec.aliases)])
        if len(named) > 1:
            named = [c for c in named if not self._claimed(name, c, claimed)] or named
        picked = self._one(spec, named)
        if picked is not None:
            if self._overwritten(spec, picked):
                return None, "", [picked]
            return picked, "its name is one students give it", []
        if named:
            return None, "", named
        if spec.kind == "value":  # bound by name only, and never by what it holds
            return None, "", []
        if spec.kind == "function":  # bound by name only: the ones that could be it, for the marker
            return None, "", fitting[:8]
        free = self._distinct([c for c in fitting if not self._claimed(name, c, claimed)])
        if any(c.head in self.rebound for c in free):  # `model` after "run all" holds the last task's: the one
            return None, "", free  # meant may be what it held before, so nothing is sure
        picked = self._one(spec, free)
        if picked is not None:
            alone = "" if len(free) == len(self._distinct(fitting)) else ", other names' aside"
            return picked, f"the one {_WHAT[spec.kind]} of the notebook that {self._fit_words(spec)}{alone}", []
        return None, "", free or fitting

    @staticmethod
    def _one(spec: NameSpec, candidates: list[Candidate]) -> Candidate | None:
        if len(candidates) == 1:
            return candidates[0]
        if spec.params is not None:
            exact = [c for c in candidates if c.params == spec.params]
            if len(exact) == 1:
                return exact[0]
        return None

    @staticmethod
    def _fit_words(spec: NameSpec) -> str:
        if spec.kind == "module" and spec.input:
            shapes = [" x ".join(map(str, shape)) for shape in spec.input]
            shown = shapes[0] if len(shapes) == 1 else ", ".join(shapes[:-1]) + " or " + shapes[-1]
            return f"maps an input of {shown} to {spec.output} values"
        if spec.kind == "optimizer":
            return f"updates all of `{spec.of}`'s parameters"
        return "fits"

    def _refuse(self, name: str, spec: NameSpec, close: list[Candidate], hint: str) -> None:
        what = f"`{name}` ({spec.about})"
        if self.follows:
            found = f"; these {_WHAT[spec.kind]}s are close: {', '.join(c.shown() for c in close)}" if close else ""
            raise NotDefined(name, self.notebook, (hint or "no cell of the notebook defines it") + found)
        rebound = [c for c in close if c.head in self.rebound]
        if rebound:
            cells = ", ".join(map(str, self.rebound[rebound[0].head]))
            others = [c.shown() for c in close if c not in rebound]
            found = (f"{rebound[0].shown()} fits, but code cells {cells} each bind `{rebound[0].head}`, which after "
                     "the run holds the last one's" + (f"; {', '.join(others)} could be it too" if others else ""))
        elif close:
            listed = ", ".join(c.shown() for c in close[:8])
            found = f"several objects could be it: {listed}"
        else:
            found = f"nothing in it {self._fit_words(spec)}" if spec.kind in ("module", "optimizer") else (
                f"no {_WHAT[spec.kind]} of it has a name students give it")
        raise Referred(f"{what} is not in {self.notebook}, which follows another starter, and {found}: a marker "
                       f"grades this item, or binds the name in {BINDINGS_FILE} beside the results "
                       f"(`{name}: <the notebook's name for it>`) and grades the submission again")
