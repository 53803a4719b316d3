"""Code versions of the assets, derived from the code that computes each table.

A table's version hashes the source of the module that defines its asset and of every module of
the package that module imports, directly or through others (its transforms, keys, expectations,
the warehouse, ...), plus the table's own declared columns, key and partition column. It changes
when any of that code changes, and not when another layer's code does. Sources are hashed as
syntax trees, so comments and formatting do not count. tables.py itself counts only through the
table's own declaration: a description of another table's column changes nothing here.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from medallion_assets.tables import Table

PACKAGE = "medallion_assets"
DECLARATIONS = f"{PACKAGE}.tables"


def in_package(module: str) -> bool:
    """Whether a module name belongs to this package."""
    return module == PACKAGE or module.startswith(PACKAGE + ".")


@cache
def syntax(module: str) -> ast.Module:
    """The parsed source of a module of the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return ast.parse(Path(spec.origin).read_text(), spec.origin)


def is_module(name: str) -> bool:
    """Whether a dotted name is a module (`from package import module`), not a name inside one."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


@cache
def imports(module: str) -> frozenset[str]:
    """The package's modules one module imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(syntax(module)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if in_package(a.name))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and in_package(node.module):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if is_module(f"{node.module}.{a.name}"))
    return frozenset(found)


@cache
def closure(module: str) -> tuple[str, ...]:
    """A module and every module of the package it imports, directly or not, sorted."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imports(name))
    return tuple(sorted(seen))


@cache
def hashed_source(module: str) -> bytes:
    """What a module adds to the code version of every table that depends on it (its name and syntax tree)."""
    return f"{module}\n{ast.dump(syntax(module))}\n".encode()


def code_version(table: Table, module: str) -> str:
    """The code version of a table whose asset is defined in `module`."""
    digest = hashlib.sha256()
    for name in closure(module):
        if name != DECLARATIONS:
            digest.update(hashed_source(name))
    declared = ([(c.name, c.type) for c in table.columns], table.key, table.partition_column)
    digest.update(repr(declared).encode())
    return digest.hexdigest()[:16]
