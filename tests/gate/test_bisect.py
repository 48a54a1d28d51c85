"""``hpml bisect GOOD BAD`` on a throwaway git repository of 8 commits (never the hpml checkout).

The regression is real compute: from the planted commit on, the tiny benchmark does 4x
the work (:mod:`tinybench`), against a 25 % minimum effect, so this checks the search and
the mechanics (worktrees, probes, the report), not the statistics (test_paired.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hpml.cli import main as cli_main
from hpml.gate.bisect import with_keyword

from . import tinybench
from .test_base_rev import git, one_cpu  # noqa: F401  (a fixture)

PLANTED = 5  # the commit (1-based) that makes the benchmark slower


def make_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: int | None = None) -> tuple[Path, list[str]]:
    """8 commits: the tiny benchmark, then small changes, the 4x slowdown at commit PLANTED;
    commit ``broken`` cannot be imported (fixed again by the next)."""
    repo = tinybench.make_project(tmp_path / "repo")
    (repo / "pyproject.toml").write_text('[tool.hpml.gate]\nmin_effect = 0.25\nrepeats = 3\npairs = 1\n'
                                         'bench_args = "benchmarks"\n')
    git(repo, "init", "-q")
    commits = []
    for n in range(1, 9):
        tinybench.make_project(repo, reps=40 if n >= PLANTED else 10)
        if n == broken:
            (repo / "tinypkg" / "__init__.py").write_text("raise ImportError('broken build')\n")
        (repo / "notes.txt").write_text(f"change {n}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"change {n}")
        commits.append(git(repo, "rev-parse", "HEAD").strip())
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    for name, value in tinybench.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TINY_ROUNDS", "5")
    monkeypatch.chdir(repo)
    return repo, commits


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_cpu) -> tuple[Path, list[str]]:  # noqa: F811
    return make_history(tmp_path, monkeypatch)


@pytest.mark.slow
def test_bisect_finds_the_planted_commit_in_4_probes(history, capsys) -> None:
    repo, commits = history
    (repo / "notes.txt").write_text("uncommitted work of the user\n")
    code = cli_main(["bisect", commits[0], commits[-1]])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    probes = [line for line in out.splitlines() if line.startswith("hpml bisect: probe ")]
    assert 1 <= len(probes) <= 4, out
    assert "about" in probes[1] and "left" in probes[1]  # progress and an estimate of the time left
    assert f"first slower commit: {commits[PLANTED - 1]} 'change {PLANTED}'" in out
    assert "test_tiny[0]" in out.splitlines()[-1] and "SLOWER" in out.splitlines()[-1]  # the convicting comparison
    assert (repo / "notes.txt").read_text() == "uncommitted work of the user\n"  # the working tree untouched
    assert git(repo, "status", "--porcelain").strip() == "M notes.txt"
    assert git(repo, "worktree", "list").count("\n") == 1 and list((repo.parent / "tmp").iterdir()) == []


@pytest.mark.slow
def test_a_commit_that_cannot_build_is_undecided_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              one_cpu, capsys) -> None:  # noqa: F811
    # the first probe after BAD lands on commit 4, which cannot be imported; commit 5 is slower,
    # commit 3 not: the first slower commit is 4 or 5, and bisect must say so rather than pick one
    repo, commits = make_history(tmp_path, monkeypatch, broken=PLANTED - 1)
    code = cli_main(["bisect", commits[0], commits[-1]])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"{commits[PLANTED - 2][:8]}: the current session (pytest benchmarks) exited" in out, out  # reported
    assert (f"the first slower commit is one of {commits[PLANTED - 2][:8]} (no verdict) or "
            f"{commits[PLANTED - 1][:8]} (slower)") in out


def test_keyword_narrows_the_selection() -> None:
    assert with_keyword(("benchmarks", "-k", "digits"), "sgd") == ("benchmarks", "-k", "(digits) and (sgd)")
    assert with_keyword(("benchmarks",), "sgd") == ("benchmarks", "-k", "sgd")
    assert with_keyword(("benchmarks",), None) == ("benchmarks",)


@pytest.mark.parametrize("argv, message", [
    (["no-such-rev", "HEAD"], "GOOD 'no-such-rev' is not a commit"),
    (["HEAD", "HEAD~3"], "is not an ancestor of BAD"),
    (["HEAD", "HEAD"], "nothing to bisect"),
])
def test_bad_revisions_exit_2(history, capsys, argv, message) -> None:
    code = cli_main(["bisect", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_outside_git_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli_main(["bisect", "HEAD~1", "HEAD"])
    assert code == 2 and "needs a git repository" in capsys.readouterr().err
