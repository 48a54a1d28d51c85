"""``hpml gate --base REV``: one benchmark selection run at REV (a temporary worktree) and at the working
tree, the two sessions taking turns call by call (docs/gate.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from hpml.errors import HpmlError
from hpml.bench import baton
from hpml.results.runfiles import load_run
from hpml.results.schema import Run

#: Lines of a failed session's output echoed to stderr before the one-line error.
LOG_TAIL_LINES = 30
#: A pair of sessions still running after this long is stuck (s): both are killed, exit 2.
SESSION_PAIR_TIMEOUT_S = 3600.0
#: Fixed (baseline, optimization) pairs per hpml row in gate sessions (read by hpml.bench.profiles).
PAIRS_ENV = "HPML_BENCH_PAIRS"
#: pytest-benchmark's timer in gate sessions: hands the baton over after each round (plain benchmarks).
TIMER_ARG = f"--benchmark-timer={baton.CHILD_MODULE}.timer"


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
    """``--base auto``: the merge-base with the default branch (on it: HEAD if dirty, else HEAD~1), and why."""
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


def session_args(bench_args: Sequence[str], json_path: Path, storage: Path) -> list[str]:
    """pytest's arguments for one gate session of ``bench_args``."""
    timer = [] if any(a.startswith("--benchmark-timer") for a in bench_args) else [TIMER_ARG]
    return [
        *bench_args,
        "--benchmark-only",  # plain tests in the selection would only cost time
        "--benchmark-save-data", f"--benchmark-json={json_path}",
        # Keep every file of this session out of the user's .benchmarks/ (autosave, summaries).
        f"--benchmark-storage=file://{storage}",
        "-p", "no:cacheprovider", "-q", *timer,
    ]


@dataclass
class Sessions:
    """The runs of both sides, session pair by session pair (``base[j]`` ran with ``current[j]``)."""

    base: list[Run]
    current: list[Run]
    unpaired: str | None  # None: every pair alternated call by call; else why not (unpaired fallback)
    turns: int = 0  # baton turns over all session pairs


def run_pair(base: Side, current: Side, bench_args: Sequence[str], out_dir: Path, scratch: Path, n: int, *,
             base_first: bool, pairs: int, env: dict[str, dict[str, str]] | None = None,
             python: str = sys.executable) -> tuple[Run, Run, baton.Report]:
    """Session pair ``n`` of ``base`` and ``current``, conducted by the baton (JSON in ``out_dir``)."""
    children, logs = [], []
    storage = scratch / "storage"
    try:
        for side in (base, current):
            side_env = dict(os.environ, **(env or {}).get(side.name, {}))
            side_env["PYTHONPATH"] = os.pathsep.join([str(side.root), *filter(None, [side_env.get("PYTHONPATH")])])
            side_env[PAIRS_ENV] = str(pairs)
            json_path = out_dir / f"{side.name}-{n}.json"
            json_path.unlink(missing_ok=True)
            log = open(scratch / f"{side.name}-{n}.log", "wb")
            logs.append(log)
            cmd = baton.child_command("pytest", session_args(bench_args, json_path, storage), python)
            children.append(baton.spawn(side.name, cmd, cwd=side.cwd, env=side_env, output=log))
        report = baton.conduct(*children, first=0 if base_first else 1, timeout=SESSION_PAIR_TIMEOUT_S)
    except baton.BatonTimeout as exc:
        raise HpmlError(f"{exc}; both sessions were stopped (a hung benchmark?)") from None
    except OSError as exc:  # python could not be started
        raise HpmlError(f"cannot start a gate session ({exc.strerror or exc})") from None
    finally:
        baton.stop(children)  # a no-op after conduct(); else nothing is left waiting for its turn
        for log in logs:
            log.close()
    runs = []
    for side in (base, current):
        json_path = out_dir / f"{side.name}-{n}.json"
        code = report.returncodes[side.name]
        if code != 0 or not json_path.is_file():
            text = (scratch / f"{side.name}-{n}.log").read_text(errors="replace")
            print("\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:]), file=sys.stderr)
            reason = "collected no benchmark" if code == 5 else f"exited {code}"
            raise HpmlError(f"the {side.name} session (pytest {' '.join(bench_args)}) {reason} in {side.cwd}; "
                            "its output tail is above")
        runs.append(load_run(json_path))
    return runs[0], runs[1], report


def run_sessions(base: Side, current: Side, bench_args: Sequence[str], repeats: int, out_dir: Path, scratch: Path, *,
                 pairs: int, env: dict[str, dict[str, str]] | None = None, label: str = "",
                 log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Sessions:
    """``repeats`` session pairs of ``bench_args``; who takes the first turn alternates (ABBA over pairs)."""
    out = Sessions([], [], None)
    for j in range(repeats):
        base_first = j % 2 == 0
        log(f"hpml gate: session pair {j + 1}/{repeats}: {label or 'base'} and working tree, "
            f"{'base' if base_first else 'current'} first")
        b, c, report = run_pair(base, current, bench_args, out_dir, scratch, j + 1, base_first=base_first, pairs=pairs,
                                env=env)
        out.base.append(b)
        out.current.append(c)
        out.turns += len(report.turns)
        if report.problem is not None and out.unpaired is None:
            out.unpaired = f"session pair {j + 1}: {report.problem}"
    return out


@contextmanager
def checkout(rev: str, top: Path, folder: Path) -> Iterator[Path]:
    """``rev`` checked out at ``folder`` (a detached ``git worktree``), removed again on the way out."""
    commit = resolve_revision(rev, top)
    out = _git(["worktree", "add", "--detach", "--quiet", str(folder), commit], top)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise HpmlError(f"git worktree add {rev} failed: {last}")
    try:
        yield folder
    finally:
        removed = _git(["worktree", "remove", "--force", str(folder)], top)
        if removed.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            _git(["worktree", "prune"], top)


TMP_PREFIX, OWNER = "hpml-gate-", "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_worktrees(top: Path) -> list[Path]:
    """Remove the ``hpml-gate-*`` worktrees of gates killed with SIGKILL (their ``finally`` never ran)."""
    listed = _git(["worktree", "list", "--porcelain"], top)
    removed = []
    for line in listed.stdout.splitlines() if listed.returncode == 0 else []:
        path = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
        if path is None or not path.parent.name.startswith(TMP_PREFIX):
            continue
        try:
            owner = int((path.parent / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not one this scheme wrote: leave it
        if _alive(owner):
            continue
        _git(["worktree", "remove", "--force", str(path)], top)
        shutil.rmtree(path.parent, ignore_errors=True)
        removed.append(path)
    if removed:
        _git(["worktree", "prune"], top)
    return removed


def run_interleaved(
    rev: str,
    bench_args: Sequence[str],
    repeats: int,
    cwd: Path | None = None,
    keep: Path | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    pairs: int = 10,
    current_rev: str | None = None,
) -> Sessions:
    """Run ``bench_args`` at ``rev`` and here (or at ``current_rev``: ``hpml bisect``), ``repeats`` session pairs."""
    cwd = (cwd or Path.cwd()).resolve()
    top = git_toplevel(cwd)
    commit = resolve_revision(rev, cwd)
    if current_rev is not None:
        resolve_revision(current_rev, cwd)  # an unknown revision is exit 2 before any worktree exists
    sweep_stale_worktrees(top)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    (tmp / OWNER).write_text(str(os.getpid()))
    out_dir = keep if keep is not None else tmp / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    relative = cwd.relative_to(top.resolve())
    try:
        with ExitStack() as stack:
            worktree = stack.enter_context(checkout(commit, top, tmp / "base"))
            base = Side("base", worktree, worktree / relative)
            if not base.cwd.is_dir():
                raise HpmlError(f"folder {relative} does not exist at {rev}; run hpml gate --base from the repository "
                                "root")
            current = Side("current", top, cwd)
            if current_rev is not None:
                other = stack.enter_context(checkout(current_rev, top, tmp / "current"))
                current = Side("current", other, other / relative)
                if not current.cwd.is_dir():
                    raise HpmlError(f"folder {relative} does not exist at {current_rev}; run from the repository root")
            scratch = tmp / "scratch"
            scratch.mkdir()
            return run_sessions(base, current, bench_args, repeats, out_dir, scratch, pairs=pairs,
                                label=f"base {commit[:8]}", log=log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
