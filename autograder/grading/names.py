"""Which cell of a notebook binds which name, read from the cells' source (never run).

Reasons use it to say where a name the check needs comes from ("defined nowhere in the
notebook", "defined in code cell 4, which failed"), and checks that pair names (features
with the weights fitted on them) use it to see a later redefinition.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_DEFINES = re.compile(r"^\s*(def|class)\s+(\w+)|^\s*(\w+)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)
_PURE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


@lru_cache(maxsize=512)
def parse_cell(source: str) -> ast.Module | None:
    """The cell as Python, IPython's magics and shell escapes turned into calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:  # the grader's side without IPython: magics are left out
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def bound_names(source: str) -> set[str]:
    """The names a cell binds at the notebook's top level: assignments, definitions,
    imports, loop and ``with`` targets, also inside its ``if``/``for``/``try`` blocks, not
    inside functions or classes."""
    tree = parse_cell(source)
    if tree is None:  # a cell that does not parse: what its lines would define
        return {m.group(2) or m.group(3) for m in _DEFINES.finditer(source)}
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
            continue
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.With,
                             ast.AsyncWith)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if isinstance(node, (ast.With, ast.AsyncWith)):
                targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
            for target in targets:
                if target is not None:
                    names |= _targets(target)
        pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return names


def pure_definition(source: str) -> bool:
    """Whether running the cell again only defines things (functions, classes, imports,
    constants): safe to run in a copy of the student's namespace to recover an earlier
    version of a redefined function."""
    tree = parse_cell(source)
    if tree is None:
        return False
    for node in tree.body:
        if isinstance(node, _PURE):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # a docstring
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True


@lru_cache(maxsize=256)
def used_names(source: str) -> set[str]:
    """Every name a cell mentions (reads or binds), anywhere in it."""
    tree = parse_cell(source)
    return set() if tree is None else {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def free_names(source: str) -> frozenset[str]:
    """The names grader code (a probe) reads from the namespace it runs in: referenced and not
    bound anywhere in it (a function's own parameters and locals are not the student's)."""
    import symtable

    try:
        top = symtable.symtable(source, "<probe>", "exec")
    except SyntaxError:
        return frozenset()
    own = {symbol.get_name() for symbol in top.get_symbols() if symbol.is_assigned() or symbol.is_imported()}
    found: set[str] = set()
    pending = [top]
    while pending:
        table = pending.pop()
        pending.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (symbol.is_global() or table is top) and not symbol.is_local() \
                    or table is top and symbol.is_referenced() and not symbol.is_assigned():
                found.add(symbol.get_name())
    return frozenset(found - own)
