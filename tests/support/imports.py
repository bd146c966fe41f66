"""The import graph of a package, read from its source, and what breaks its layer rules.

Every import counts, also those under `if TYPE_CHECKING:` and inside functions: a circle that
only type checking walks is still a circle a reader has to untangle. Imports of a package's
`__init__.py` (which Python runs on the way to a module) are left out; an `__init__.py` is
checked as a source like any module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Room:
    """A layer of the package: the modules it holds and whether they may import each other."""

    name: str
    patterns: tuple[str, ...]
    rank: int
    # Within the room: allowed (a library's own modules), or not (coordinators stand alone).
    inside: bool = True

    def holds(self, module: str) -> bool:
        """Whether `module` (a path relative to the package) belongs to this room."""
        return any(fnmatch(module, pattern) for pattern in self.patterns)


def _resolve(package: Path, module: str, node: ast.ImportFrom) -> list[str]:
    """The package's modules an import names (paths relative to `package`)."""
    if node.level == 0:
        prefix = f"custom_components.{package.name}"
        if not (node.module or "").startswith(prefix):
            return []
        base = node.module.removeprefix(prefix).lstrip(".").split(".") if node.module else []
    else:
        here = module.split("/")[:-1]
        up = node.level - 1
        if up > len(here):
            return []
        base = here[: len(here) - up] + (node.module.split(".") if node.module else [])
    found = []
    for alias in node.names:
        for parts in ([*base, alias.name], base):
            path = "/".join(parts)
            if parts and (package / f"{path}.py").is_file():
                found.append(f"{path}.py")
                break
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (paths relative to `package`)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = graph.setdefault(module, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets.update(
                    t for t in _resolve(package, module, node) if not t.endswith("__init__.py")
                )
    return graph


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every set of modules that import each other round (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(part) > 1 or node in graph.get(node, ()):
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_problems(package: Path, rooms: Sequence[Room]) -> list[str]:
    """Every circle, every module in no room, and every import a room's rule forbids.

    A module may import the rooms of a lower rank, and its own room where the room allows it;
    never a room of its own rank or above.
    """
    graph = import_graph(package)
    problems = [f"import circle: {' -> '.join(part)}" for part in circles(graph)]

    def room_of(module: str) -> Room | None:
        return next((room for room in rooms if room.holds(module)), None)

    for module, targets in sorted(graph.items()):
        source = room_of(module)
        if source is None:
            problems.append(f"{module}: in no room of the layer rules")
            continue
        for target in sorted(targets):
            room = room_of(target)
            if room is None:
                continue  # reported as a source
            allowed = room.rank < source.rank or (room is source and source.inside)
            if not allowed:
                problems.append(f"{module} ({source.name}) imports {target} ({room.name})")
    return problems
