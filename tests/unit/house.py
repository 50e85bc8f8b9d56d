"""The rules of the house for ``testbed/`` as code: which modules import
which (read with ``ast`` from the source, function-level imports included,
nothing imported), the layer of each module, import cycles, module sizes.
``test_house.py`` holds the package to these rules and checks the checks on
small made-up packages.

Layers, lowest first: a module may import its own layer and those below,
never one above. The root package (``testbed/__init__.py``, which gives
topology files ``Topology``) counts as ``model``; ``testbed/assertions.py``
(the public name of ``testbed.testing.assertions``) as ``testing``;
``testbed/jsonlines.py`` (which imports nothing of the project) with
``errors`` on the ground floor.

An import of ``a.b.c`` runs ``a.b/__init__.py`` first, so it counts as an
import of each package on the way too (but the root package, and the
packages the importing module is itself inside, which Python has already
started): that is how ``x -> lab.cleanup`` closed a cycle through
``lab/__init__.py``. Imports under ``if TYPE_CHECKING:`` never run and do
not count; modules named as strings (``importlib.import_module``) are not
seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

# (traffic sits below lab, not above it: Lab sends its probes through
# Traffic, and traffic needs only linux and errors)
LAYERS = ("errors", "bgp", "internet", "model", "view", "linux", "traffic", "agent", "speaker", "routers", "report",
          "lab", "live", "testing", "exercise", "bench", "cli")
ALIASES = {"": "model", "assertions": "testing", "lab_cli": "cli", "start_display": "cli",
           "jsonlines": "errors"}  # the ground floor: modules that import nothing of the project
MAX_LINES = 500


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return known.get(name, Path()).name == "__init__.py"


def imports(name: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The package's modules that module ``name`` imports, with the line of
    the first import of each (anywhere in the file)."""
    root = name.split(".")[0]
    package = name if _is_package(name, known) else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        while target and target not in known:  # from a.b import function: a.b
            target = target.rpartition(".")[0]
        if not target or target == name:
            return
        parts = target.split(".")
        for i in range(2, len(parts) + 1):   # a.b.c runs a.b/__init__ first
            step = ".".join(parts[:i])
            if step in known and not (name == step or name.startswith(step + ".")):
                found.setdefault(step, line)

    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == root or alias.name.startswith(root + "."):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == root or module.startswith(root + "."):
                for alias in node.names:
                    add(f"{module}.{alias.name}", node.lineno)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``
    (imports for annotations only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def graph(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    known = modules(root)
    return known, {name: imports(name, path, known) for name, path in known.items()}


def layer_of(name: str) -> str:
    top = name.partition(".")[2].partition(".")[0]
    return ALIASES.get(top, top)


def layering_violations(root: Path) -> list[str]:
    """Every import against the layer order, and every module in no layer."""
    known, edges = graph(root)
    problems = []
    for name in known:
        if layer_of(name) not in LAYERS:
            problems.append(f"{known[name]}: module {name} is in no layer (add {layer_of(name)!r} to LAYERS)")
    for name, targets in edges.items():
        mine = layer_of(name)
        if mine not in LAYERS:
            continue
        for target, line in targets.items():
            theirs = layer_of(target)
            if theirs in LAYERS and LAYERS.index(theirs) > LAYERS.index(mine):
                problems.append(f"{known[name]}:{line}: {name} ({mine}) imports {target} ({theirs}), "
                                "a higher layer")
    return problems


def cycles(root: Path) -> list[str]:
    """Every group of modules that import each other, round and round
    (a strongly connected component), with one cycle through it spelled out."""
    known, edges = graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm (the graph has ~60 nodes)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_spell(group, edges, known) for group in sorted(groups)]


def _spell(group: list[str], edges: dict[str, dict[str, int]], known: dict[str, Path]) -> str:
    """One cycle through ``group``, each step with the file and line of its import."""
    members = set(group)
    start = group[0]
    # breadth-first from start back to start, inside the group
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node]):
            if nxt == start:
                steps = paths[node] + [start]
                hops = [f"{a} -> {b} ({known[a].name}:{edges[a][b]})" for a, b in zip(steps, steps[1:])]
                return f"cycle among {', '.join(group)}: " + "; ".join(hops)
            if nxt in members and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return f"cycle among {', '.join(group)}"


def oversized(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Every module longer than ``limit`` lines, longest first."""
    sizes = [(len(path.read_text().splitlines()), path) for path in modules(root).values()]
    return [f"{path} has {lines} lines (limit {limit})"
            for lines, path in sorted(sizes, key=lambda item: (-item[0], str(item[1]))) if lines > limit]
