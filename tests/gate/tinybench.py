"""A throwaway project with one ~1.7 ms numpy benchmark, for real A/B runs of the gate.

``make_project(folder)`` writes ``tinypkg/`` (the "code under test") and
``<folder>/benchmarks/test_tiny.py``; :func:`run_session` runs one real pytest-benchmark
session on it with ``--benchmark-save-data --benchmark-json``.

The work is ``REPS`` passes of ``np.sin`` over 20k floats: single-threaded, no
allocation growth, so its time is proportional to ``REPS``.  A planted slowdown of
10 % is ``REPS`` 10 -> 11: exactly 10 % more of the same work, either as a code
change (``make_project(reps=11)``) or through ``TINY_SLOWDOWN=0.1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PKG = '''\
"""Code under test."""
import os

import numpy as np

REPS = {reps}
# testing only: TINY_SLOWDOWN=0.1 does 10 % more of the same work
REPS = round(REPS * (1 + float(os.environ.get("TINY_SLOWDOWN", "0"))))
X0 = np.random.default_rng(0).random(20_000)


def work():
    x = X0
    for _ in range(REPS):
        x = np.sin(x)
    return x
'''

BENCH = '''\
import os

import pytest

from tinypkg import work

ROUNDS = int(os.environ.get("TINY_ROUNDS", "20"))
PAIRS = int(os.environ.get("TINY_PAIRS", "1"))


@pytest.mark.parametrize("pair", range(PAIRS))
def test_tiny(benchmark, pair):
    benchmark.pedantic(work, rounds=ROUNDS, warmup_rounds=2, iterations=1)
'''

#: Single-threaded numpy and a quiet, isolated pytest in every session.
ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def make_project(folder: Path, reps: int = 10) -> Path:
    """Write (or rewrite) the project; ``reps`` = 11 is the 10 % slower version of the code."""
    (folder / "tinypkg").mkdir(parents=True, exist_ok=True)
    (folder / "benchmarks").mkdir(exist_ok=True)
    (folder / "tinypkg" / "__init__.py").write_text(PKG.format(reps=reps))
    (folder / "benchmarks" / "test_tiny.py").write_text(BENCH)
    (folder / "pytest.ini").write_text("[pytest]\n")  # rootdir here: no outer config or conftest applies
    return folder


def run_session(project: Path, out: Path, *, slowdown: float = 0.0, rounds: int = 20, pairs: int = 1) -> Path:
    """One real pytest-benchmark session; returns the JSON path (raw data included)."""
    env = dict(os.environ, **ENV, TINY_SLOWDOWN=str(slowdown), TINY_ROUNDS=str(rounds), TINY_PAIRS=str(pairs),
               PYTHONPATH=str(project))
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only", "--benchmark-save-data",
         f"--benchmark-json={out}", "benchmarks"],
        cwd=project, env=env, check=True, capture_output=True,
    )
    return out
