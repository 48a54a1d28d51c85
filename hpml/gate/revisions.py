"""Run one benchmark selection at a base revision and at the working tree, interleaved.

``hpml gate --base REV`` checks REV out into a temporary ``git worktree`` and runs
the same pytest selection there and here, alternating sides (base, current,
current, base, ...) so that slow drifts of the machine (thermal state, a neighbour
starting a job) hit both sides alike.  The rounds of each side are then pooled and
handed to the A/B comparison.  The worktree is always removed, even on Ctrl-C.

Each side imports its own code: ``PYTHONPATH`` starts with that side's checkout, which
wins over an editable install of the package (setuptools' editable finder is
consulted after ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hpml.errors import HpmlError
from hpml.results.schema import Run, load_run

#: Lines of a failed session's output echoed to stderr before the one-line error.
LOG_TAIL_LINES = 30


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:  # git not installed
        raise HpmlError(f"--base needs git, which could not be run ({exc})") from None


def git_toplevel(cwd: Path) -> Path:
    out = _git(["rev-parse", "--show-toplevel"], cwd)
    if out.returncode != 0:
        raise HpmlError(f"--base needs a git repository, and {cwd} is not inside one; use --ab BASE CURRENT instead")
    return Path(out.stdout.strip())


def resolve_revision(rev: str, cwd: Path) -> str:
    """The full commit id of ``rev`` (HpmlError when git does not know it)."""
    out = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    if out.returncode != 0:
        raise HpmlError(f"--base {rev!r} is not a commit git knows here; try a branch, tag or commit id")
    return out.stdout.strip()


def _default_branch(cwd: Path) -> str | None:
    """The repository's default branch as git knows it here: origin's HEAD, else main or master."""
    out = _git(["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"], cwd)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    for name in ("main", "master", "origin/main", "origin/master"):
        if _git(["rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], cwd).returncode == 0:
            return name
    return None


def auto_base(cwd: Path | None = None) -> tuple[str | None, str]:
    """``--base auto``: the revision CI compares with, and why (None and the reason when there is none).

    * on a branch: its merge-base with the default branch (what the branch changed);
    * on the default branch itself (merge-base = HEAD, a fresh clone of main in CI): HEAD
      when the working tree has uncommitted changes, else the previous commit HEAD~1;
    * a first commit, or a shallow clone without HEAD's parent: None (nothing to compare).
    """
    cwd = (cwd or Path.cwd()).resolve()
    top = git_toplevel(cwd)
    head = resolve_revision("HEAD", top)
    default = _default_branch(top)
    if default is not None:
        out = _git(["merge-base", "HEAD", default], top)
        base = out.stdout.strip()
        if out.returncode == 0 and base and base != head:
            return base, f"merge-base of HEAD with {default}, {base[:8]}"
    if _git(["status", "--porcelain", "--untracked-files=no"], top).stdout.strip():
        return head, f"HEAD {head[:8]} (the working tree has uncommitted changes)"
    parent = _git(["rev-parse", "--verify", "--quiet", "HEAD~1^{commit}"], top)
    if parent.returncode == 0:
        return parent.stdout.strip(), f"the previous commit HEAD~1, {parent.stdout.strip()[:8]}"
    shallow = _git(["rev-parse", "--is-shallow-repository"], top).stdout.strip() == "true"
    if shallow:
        return None, "a shallow clone without HEAD's parent; fetch it with `git fetch --deepen=1` to gate"
    return None, f"HEAD {head[:8]} is the first commit"


@dataclass(frozen=True)
class Side:
    """One side of the comparison: where to run pytest and which code it imports."""

    name: str  # "base" or "current"
    root: Path  # checkout root, put first on PYTHONPATH
    cwd: Path  # the same relative folder as the user's cwd


def run_session(side: Side, bench_args: Sequence[str], json_path: Path, storage: Path,
                python: str = sys.executable) -> Run:
    """One pytest-benchmark session of ``side``; returns its run (raw data included)."""
    cmd = [
        python, "-m", "pytest", *bench_args,
        "--benchmark-only",  # plain tests in the selection would only cost time
        "--benchmark-save-data", f"--benchmark-json={json_path}",
        # Keep every file of this session out of the user's .benchmarks/ (autosave, summaries).
        f"--benchmark-storage=file://{storage}",
        "-p", "no:cacheprovider", "-q",
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(side.root), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, cwd=side.cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not json_path.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        print("\n".join(tail), file=sys.stderr)
        reason = "collected no benchmark" if proc.returncode == 5 else f"exited {proc.returncode}"
        raise HpmlError(
            f"the {side.name} session ({' '.join(cmd[3:])}) {reason} in {side.cwd}; its output tail is above"
        )
    return load_run(json_path)


def run_interleaved(
    rev: str,
    bench_args: Sequence[str],
    repeats: int,
    cwd: Path | None = None,
    keep: Path | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> tuple[list[Run], list[Run]]:
    """Run ``bench_args`` ``repeats`` times per side, alternating sides; returns (base runs, current runs).

    ``keep``: a folder that receives the session JSON files (else they are deleted).
    """
    cwd = (cwd or Path.cwd()).resolve()
    top = git_toplevel(cwd)
    commit = resolve_revision(rev, cwd)
    tmp = Path(tempfile.mkdtemp(prefix="hpml-gate-"))
    worktree = tmp / "base"
    out_dir = keep if keep is not None else tmp / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    added = False
    try:
        out = _git(["worktree", "add", "--detach", "--quiet", str(worktree), commit], top)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
            raise HpmlError(f"git worktree add {rev} failed: {last}")
        added = True
        relative = cwd.relative_to(top.resolve())
        base = Side("base", worktree, worktree / relative)
        if not base.cwd.is_dir():
            raise HpmlError(f"folder {relative} does not exist at {rev}; run hpml gate --base from the repository root")
        current = Side("current", top, cwd)
        runs: dict[str, list[Run]] = {"base": [], "current": []}
        for i in range(repeats):
            # ABBA order: each side goes first equally often, so a linear drift cancels.
            for side in (base, current) if i % 2 == 0 else (current, base):
                n = len(runs[side.name]) + 1
                log(f"hpml gate: {side.name} session {n}/{repeats} ({commit[:8] if side is base else 'working tree'})")
                json_path = out_dir / f"{side.name}-{n}.json"
                runs[side.name].append(run_session(side, bench_args, json_path, tmp / "storage"))
        return runs["base"], runs["current"]
    finally:
        if added:
            removed = _git(["worktree", "remove", "--force", str(worktree)], top)
            if removed.returncode != 0:
                shutil.rmtree(worktree, ignore_errors=True)
                _git(["worktree", "prune"], top)
        shutil.rmtree(tmp, ignore_errors=True)
