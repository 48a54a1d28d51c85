"""``hpml gate --base auto``: which revision CI compares with, and the cases with none.

On throwaway repositories (never the hpml checkout); no benchmark runs here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hpml.gate.revisions import auto_base


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main",
                           *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, text: str) -> str:
    (repo / "f.txt").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", text)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    return repo


def test_first_commit_has_no_base(repo: Path) -> None:
    commit(repo, "one")
    base, why = auto_base(repo)
    assert base is None and "first commit" in why


def test_default_branch_compares_with_the_previous_commit(repo: Path) -> None:
    first = commit(repo, "one")
    commit(repo, "two")
    assert auto_base(repo) == (first, f"the previous commit HEAD~1, {first[:8]}")


def test_uncommitted_changes_compare_with_head(repo: Path) -> None:
    commit(repo, "one")
    head = commit(repo, "two")
    (repo / "f.txt").write_text("changed")
    assert auto_base(repo)[0] == head


def test_branch_compares_with_its_merge_base(repo: Path) -> None:
    commit(repo, "one")
    fork = commit(repo, "two")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "three")
    commit(repo, "four")
    git(repo, "checkout", "-q", "main")
    commit(repo, "main moved on")
    git(repo, "checkout", "-q", "feature")
    base, why = auto_base(repo)
    assert base == fork and "merge-base" in why and "main" in why


def test_clone_uses_origin_head(repo: Path, tmp_path: Path) -> None:
    first = commit(repo, "one")
    commit(repo, "two")
    git(tmp_path, "clone", "-q", str(repo), "clone")
    assert auto_base(tmp_path / "clone")[0] == first


def test_shallow_clone_without_parent_says_so(repo: Path, tmp_path: Path) -> None:
    commit(repo, "one")
    commit(repo, "two")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", "shallow")
    base, why = auto_base(tmp_path / "shallow")
    assert base is None and "shallow" in why


def test_cli_skips_the_stage_without_a_base(repo: Path, gate, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(repo, "one")
    monkeypatch.chdir(repo)
    code, out, _ = gate("--base", "auto")
    assert code == 0 and "no base revision" in out and "first commit" in out and "skipping" in out


def test_auto_outside_git_is_bad_input(tmp_path: Path, gate) -> None:
    code, _, err = gate("--base", "auto")
    assert code == 2 and "git repository" in err
