"""Root pytest configuration shared by ``tests/`` and ``benchmarks/``.

* ``--data-dir`` (default ``$HPML_DATA_DIR``): where real-format datasets live.
  Without it, everything runs on the synthetic twins and the bundled digits set.
* Tests marked ``gpu`` are skipped, with the reason, when CUDA is absent.
* ``--hpml-seeds N`` / ``--hpml-weights DIR``: seeds and pretrained weights for the
  convergence tests (``tests/convergence``, ``-m convergence``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hpml")
    group.addoption(
        "--data-dir",
        default=os.environ.get("HPML_DATA_DIR"),
        help="directory holding real-format datasets (default: $HPML_DATA_DIR; "
        "without it the synthetic twins are used)",
    )
    # Convergence options (tests/convergence); options must be registered here, at startup.
    group.addoption(
        "--hpml-seeds",
        type=int,
        default=None,
        metavar="N",
        help="convergence tests: train each case with N seeds (0..N-1) and report the accuracy "
        "mean and spread (default: 1 for GPU cases, 3 for the digits sweep)",
    )
    group.addoption(
        "--hpml-weights",
        default=None,
        metavar="DIR",
        help="convergence tests: directory of pretrained weights (resnet50.pth, xlnet-base-cased/) "
        "for the pretrained cases (default: $HPML_WEIGHTS_DIR; without it they are skipped)",
    )


@pytest.fixture(scope="session")
def data_dir(request: pytest.FixtureRequest) -> Path | None:
    """The user's data directory, or None when only synthetic/bundled data is available."""
    value = request.config.getoption("--data-dir")
    return Path(value).expanduser() if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
