"""Every repository path and ``hpml.*`` name that a comment, docstring or doc points to exists.

Pointers in prose drift when files move (issue 31 found three stale ones), so this reads the
text, not the code: comments and docstrings of the Python files, and the Markdown, TOML, INI and
CI files whole.  Checked without importing anything: a path must exist in the checkout (a glob
must match), a markdown link must resolve from its file, and a dotted hpml name must be a module
of the tree, optionally followed by a name its source defines at top level or lists in
``__all__`` (and one level inside a class).  Not checked: paths after ``<commit>:`` (``git show
ef598ee:benchmarks/results/...`` names history, not the tree) or under another root
(``<folder>/benchmarks/x.py``).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Top-level folders whose paths prose may point to (a path must start with one of them).
TOP = ("hpml", "tests", "benchmarks", "docs", "reference", "tools", ".ci")
#: Text read whole (not Python): docs, config, CI scripts.
TEXT_SUFFIXES = {".md", ".toml", ".ini", ".sh", ""}
SKIP_PARTS = {"__pycache__"}

PATH = re.compile(r"(?<![\w./:-])((?:%s)/[\w.+*/-]*)" % "|".join(re.escape(t) for t in TOP))
NAME = re.compile(r"(?<![\w./:-])(hpml(?:\.[A-Za-z_]\w*)+)")
#: Dotted names that are not modules: the plugin entry-point groups (hpml/plugins.py's GROUPS).
NOT_MODULES = {"hpml.models", "hpml.datasets"}
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
#: A markdown file named without its folder ("see README.md") must exist somewhere in the tree.
MD_NAME = re.compile(r"(?<![\w./(-])([\w-]+\.md)\b")
#: Markdown that hpml writes (the report's index, the example `--markdown` verdict), not files of the tree.
GENERATED_MD = {"index.md", "verdict.md"}


def scanned_files(root: Path) -> list[Path]:
    """The files whose prose is checked: Python under the top folders and the root, docs and config."""
    files = [p for p in root.iterdir() if p.is_file() and (p.suffix in {".py", ".md", ".toml", ".ini"})]
    for top in TOP:
        for p in (root / top).rglob("*") if (root / top).is_dir() else ():
            if p.is_file() and not SKIP_PARTS & set(p.relative_to(root).parts) and \
                    (p.suffix == ".py" or p.suffix in TEXT_SUFFIXES and (p.suffix or top == ".ci")):
                files.append(p)
    return sorted(files)


def prose(path: Path) -> str:
    """A Python file's comments and docstrings (bare string statements); any other file whole."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            parts.append(node.value.value)
    return "\n".join(parts)


def _module_file(root: Path, parts: list[str]) -> Path | None:
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(tree: ast.Module | ast.ClassDef, name: str) -> ast.AST | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets) \
                and isinstance(node.value, (ast.List, ast.Tuple)) and \
                any(isinstance(e, ast.Constant) and e.value == name for e in node.value.elts):
            return node  # exported lazily (a module __getattr__)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node
        if any(isinstance(t, ast.Tuple) and any(isinstance(e, ast.Name) and e.id == name for e in t.elts) for t in targets):
            return node
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name.split(".")[0]) == name for a in node.names):
            return node
        if isinstance(node, (ast.If, ast.Try)):  # guarded definitions (try: import ... except)
            found = _defined(ast.Module(body=node.body + getattr(node, "orelse", []), type_ignores=[]), name)
            if found is not None:
                return found
    return None


def name_exists(root: Path, dotted: str) -> bool:
    """A module of the tree (``hpml.bench.pairing``), or a name its source defines (``...pairing.measure_pairs``)."""
    if dotted in NOT_MODULES:
        return True
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module = _module_file(root, parts[:split])
        if module is None:
            continue
        rest = parts[split:]
        if not rest:
            return True
        node: ast.AST | None = ast.parse(module.read_text(encoding="utf-8"))
        node = _defined(node, rest[0])  # type: ignore[arg-type]
        if node is None:
            return False
        if len(rest) == 1 or not isinstance(node, ast.ClassDef):
            return True  # attributes of instances and modules imported in: not followed further
        return _defined(node, rest[1]) is not None or any(
            isinstance(n, ast.FunctionDef) and n.name == "__init__" for n in node.body)  # set in __init__
    return False


def path_exists(root: Path, pointer: str) -> bool:
    pointer = pointer.rstrip(".,:;")
    if "*" in pointer:
        return any(root.glob(pointer))
    return (root / pointer).exists()


def stale_pointers(root: Path) -> list[str]:
    """``file: pointer`` for every path, link or ``hpml.*`` name in prose that does not exist."""
    stale = []
    md_names = {p.name for p in scanned_files(root) if p.suffix == ".md"} | GENERATED_MD
    for file in scanned_files(root):
        text, rel = prose(file), file.relative_to(root)
        for match in PATH.finditer(text):
            if not path_exists(root, match.group(1)):
                stale.append(f"{rel}: {match.group(1)}")
        for match in NAME.finditer(text):
            dotted = match.group(1).rstrip(".")
            if not name_exists(root, dotted):
                stale.append(f"{rel}: {dotted}")
        for match in MD_NAME.finditer(text):
            if match.group(1) not in md_names:
                stale.append(f"{rel}: {match.group(1)}")
        if file.suffix == ".md":
            for match in LINK.finditer(text):
                target = match.group(1)
                if "://" not in target and not target.startswith("mailto:") and not (file.parent / target).exists():
                    stale.append(f"{rel}: ({target})")
    return stale


def test_every_path_and_name_the_docs_and_comments_point_to_exists() -> None:
    stale = stale_pointers(ROOT)
    assert stale == [], "stale pointers (fix the text or the path):\n" + "\n".join(stale)


@pytest.mark.parametrize("pointer", [
    "hpml/bench/no_such_module.py",           # a path in a comment
    "docs/studies/no-such-note.md",
    "hpml.bench.no_such_module",              # a module that moved
    "hpml.bench.paired.no_such_function",     # a name that was renamed
    "NO_SUCH_SECTION.md",                     # a doc named without its folder
])
def test_a_stale_pointer_in_a_comment_is_found(tmp_path: Path, pointer: str) -> None:
    (tmp_path / "hpml" / "bench").mkdir(parents=True)
    (tmp_path / "hpml" / "__init__.py").write_text("")
    (tmp_path / "hpml" / "bench" / "__init__.py").write_text("")
    (tmp_path / "hpml" / "bench" / "paired.py").write_text(
        '"""Pairs; see hpml.bench.paired.measure_pairs and hpml/bench/paired.py."""\n'
        "def measure_pairs():\n    pass\n")
    assert stale_pointers(tmp_path) == []
    (tmp_path / "hpml" / "bench" / "user.py").write_text(f"x = 1  # see {pointer}\n")
    assert stale_pointers(tmp_path) == [f"hpml/bench/user.py: {pointer}"]


def test_history_and_markdown_links_are_told_apart(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("raw data: `git show ef598ee:benchmarks/results/x/`; see [b](b.md)\n")
    assert stale_pointers(tmp_path) == ["docs/a.md: (b.md)"]  # the git-show path names history, not the tree
    (tmp_path / "docs" / "b.md").write_text("ok\n")
    assert stale_pointers(tmp_path) == []
