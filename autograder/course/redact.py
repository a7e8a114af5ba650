"""What of an assignment's trusted side may leave it: the public part of the checks and
the rubric, and helper modules without the grader's held-out seeds.

- A check module keeps its tests of public items and only the functions, classes and
  constants those tests use (transitively, fixtures included); tests of hidden items,
  and whatever only they use (an expected value's computation), are gone. A module
  with no public test left is dropped.
- The rubric keeps every item (students see what is marked), but the ``given`` values
  of hidden items, and of questions whose items are all hidden, are removed.
- Module-level constants whose name contains ``HELDOUT`` get fresh random values: a
  self-check measures on a sample of the same distribution, never on the grader's.
"""

from __future__ import annotations

import ast
import secrets
from typing import Any

from .rubric import Rubric

_HELDOUT = "HELDOUT"


def _item_of(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The item id of a ``@pytest.mark.item("...")`` decorator, if any."""
    for decorator in function.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "item" and decorator.args
                and isinstance(decorator.args[0], ast.Constant)):
            return str(decorator.args[0].value)
    return None


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _used(node: ast.AST) -> set[str]:
    """Names a definition reads, and the fixtures its parameters ask for."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for function in (n for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        names |= {a.arg for a in function.args.args + function.args.kwonlyargs}
    return names


def public_checks(source: str, hidden: set[str]) -> str | None:
    """The public part of a check module's source; None when no public test is left."""
    tree = ast.parse(source)
    body = [node for node in tree.body
            if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _item_of(node) in hidden)]
    tests = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]
    if not tests:
        return None
    always = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))
              or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))  # the docstring
              or "pytestmark" in _defined(n)]
    kept = {id(n) for n in [*tests, *always]}
    needed = set().union(*(_used(n) for n in [*tests, *always]))
    changed = True
    while changed:
        changed = False
        for node in body:
            if id(node) not in kept and _defined(node) & needed:
                kept.add(id(node))
                needed |= _used(node)
                changed = True
    tree.body = [node for node in body if id(node) in kept]
    return ast.unparse(tree) + "\n"


def fresh_seeds(source: str) -> str:
    """A helper module's source with every held-out constant given a new random value."""
    tree = ast.parse(source)
    for node in tree.body:
        if any(_HELDOUT in name.upper() for name in _defined(node)) and isinstance(node, (ast.Assign, ast.AnnAssign)):
            node.value = ast.Constant(secrets.randbelow(2**31))
    return ast.unparse(tree) + "\n"


def public_rubric(raw: dict[str, Any], rubric: Rubric) -> dict[str, Any]:
    """The rubric's YAML data without the given values of hidden items."""
    hidden = {item.id for _, item in rubric.items() if item.visibility == "hidden"}
    questions = []
    for question in raw.get("questions", []):
        question = dict(question)
        items = [dict(item) for item in question.get("items", [])]
        for item in items:
            if item.get("id") in hidden:
                item.pop("given", None)
        if items and all(item.get("id") in hidden for item in items):
            question.pop("given", None)
        question["items"] = items
        questions.append(question)
    return {**raw, "questions": questions}
