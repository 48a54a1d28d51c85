"""Convergence test plumbing: where records go, seeds, weights, skip reasons, the summary.

Options (registered in the root conftest, read here): ``--hpml-seeds N``,
``--hpml-weights DIR`` (or ``$HPML_WEIGHTS_DIR``), ``--data-dir`` (or ``$HPML_DATA_DIR``).
Records go to ``<--benchmark-storage>/convergence/`` (``.benchmarks/convergence/``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest
import torch

from hpml.convergence import weights_dir
from hpml.convergence.records import FOLDER

from .harness import RESULTS


@pytest.fixture(scope="session")
def convergence_store(request: pytest.FixtureRequest) -> Path:
    """``<benchmark storage>/convergence``: next to pytest-benchmark's runs, where the
    report reads convergence records."""
    config = request.config
    storage = str(config.getoption("benchmark_storage", default=None) or "file://.benchmarks")
    root = Path(storage.removeprefix("file://")) if storage.startswith("file://") or "://" not in storage else None
    if root is None:  # a non-file storage (elasticsearch): keep records in the default folder
        root = Path(".benchmarks")
    if not root.is_absolute():
        root = config.invocation_params.dir / root
    return root / FOLDER


@pytest.fixture(scope="session")
def weights_root(request: pytest.FixtureRequest) -> Path | None:
    return weights_dir(request.config.getoption("--hpml-weights"))


#: Intra-op threads for CPU training in these tests (default 2; set HPML_CONVERGENCE_THREADS).
THREADS_ENV = "HPML_CONVERGENCE_THREADS"
#: Default: at most 2.  The seed-0 digits ``optimized`` run on a quiet 2-core machine took 26.7 s
#: on 2 threads and 38.9 s on 1 (2026-11-29); on cores another process holds, every extra
#: intra-op thread waits at each op's barrier (an older recipe: 90 s on 2 threads, 14 s on 1),
#: so on a shared machine set HPML_CONVERGENCE_THREADS=1.
DEFAULT_THREADS = 2


@contextlib.contextmanager
def cpu_threads() -> Iterator[None]:
    """Train CPU runs on few threads (:data:`DEFAULT_THREADS`, or ``$HPML_CONVERGENCE_THREADS``).
    No effect when CUDA trains."""
    if torch.cuda.is_available():
        yield
        return
    old = torch.get_num_threads()
    raw = os.environ.get(THREADS_ENV, "").strip()
    torch.set_num_threads(max(1, int(raw)) if raw else min(DEFAULT_THREADS, old))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture
def few_threads() -> Iterator[None]:
    with cpu_threads():
        yield


@pytest.fixture(scope="module")
def few_threads_module() -> Iterator[None]:
    with cpu_threads():
        yield


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(RESULTS, [])
    if lines:
        terminalreporter.section("convergence: final top-1 accuracy over seeds")
        for line in lines:
            terminalreporter.write_line(line)
