"""The shape issue 31 set for hpml's modules, kept: no import cycles (function-level imports
included), docstrings and comments at most 12 % of the lines, no module over 500 lines (the
largest, hpml/gate/checks.py, holds one idea: the gate's checks)."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hpml"
MAX_PROSE_SHARE = 0.12
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """hpml modules ``name`` imports anywhere in its source (not under TYPE_CHECKING), parents included."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]) if node.level else node.module
            targets += [f"{base}.{a.name}" for a in node.names] + [base or ""]
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        # importing a.b.c runs a/__init__ and a/b/__init__ as well
        while target and target != "hpml":
            if target != name and not name.startswith(target + "."):
                found.add(target)
            target = target.rpartition(".")[0]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_hpml_modules() -> None:
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _prose_lines(text: str) -> int:
    """Lines that belong to a docstring (any string statement) or hold a comment."""
    lines = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            lines.update(range(node.lineno, node.end_lineno + 1))
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            lines.add(token.start[0])
    return len(lines)


def test_docstrings_and_comments_stay_a_small_share_of_hpml() -> None:
    texts = [p.read_text() for p in _modules().values()]
    total = sum(len(t.splitlines()) for t in texts)
    assert sum(map(_prose_lines, texts)) / total <= MAX_PROSE_SHARE


def test_prose_lines_count_docstrings_and_comments_once() -> None:
    assert _prose_lines('"""One\ntwo."""\nx = 1  # why\n# note\ny = 2\n') == 4


def test_no_module_is_over_500_lines() -> None:
    assert {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES} == {}
