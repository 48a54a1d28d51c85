"""Shared fixtures of the unit tests."""

from __future__ import annotations

import pytest

from hpml.train import malloc


class FakeLibc:
    """Stands in for glibc's ``mallopt``: records the calls, accepts (or rejects) them."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        self.accept = accept

    def mallopt(self, param, value) -> int:
        self.calls.append((param.value, value.value))
        return 1 if self.accept else 0


@pytest.fixture(autouse=True)
def fake_allocator(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    """Keep the test process's real allocator untouched: ``host_allocator`` (part of the
    CPU ``optimized``) is one-way per process, and in-process benchmark runs in later
    tests must measure the default.  Each test starts untuned, with a recording fake;
    tests/train/test_malloc.py checks the real effect in fresh processes."""
    fake = FakeLibc()
    monkeypatch.setattr(malloc, "_glibc", lambda: fake)
    monkeypatch.setattr(malloc, "_tuned", False)
    return fake


@pytest.fixture(autouse=True)
def no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under GitHub Actions the tests' own gate and report runs would append their verdicts to the
    job's summary ($GITHUB_STEP_SUMMARY): the tests that check it set their own file."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
