"""Peak FLOP/s probe: measured once, cached per machine, robust to a corrupt cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpml.errors import HpmlError
from hpml.measure import measured_peak_flops
from hpml.measure import peak as peak_mod

TINY = dict(n=64, budget_s=0.01)  # a probe of milliseconds, enough to exercise the path


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, torch.dtype]]:
    calls: list[tuple[str, torch.dtype]] = []
    real = peak_mod._matmul_probe

    def counting(device: torch.device, dtype: torch.dtype, n: int, budget_s: float) -> tuple[float, int]:
        calls.append((device.type, dtype))
        return real(device, dtype, n, budget_s)

    monkeypatch.setattr(peak_mod, "_matmul_probe", counting)
    return calls


def test_probe_returns_positive_and_is_cached(cache_dir: Path, probe_calls: list) -> None:
    first = measured_peak_flops("cpu", torch.float32, **TINY)
    assert isinstance(first, float) and first > 0
    cache = json.loads((cache_dir / "peak_flops.json").read_text())
    assert len(cache) == 1 and next(iter(cache.values()))["flops_per_s"] == first

    assert measured_peak_flops("cpu", "float32", **TINY) == first
    assert len(probe_calls) == 1  # the second call read the cache

    measured_peak_flops("cpu", torch.float32, refresh=True, **TINY)
    assert len(probe_calls) == 2


def test_each_dtype_has_its_own_entry(cache_dir: Path, probe_calls: list) -> None:
    for dtype in ("float32", "bf16", torch.float16):
        assert measured_peak_flops("cpu", dtype, **TINY) > 0
    assert len(json.loads((cache_dir / "peak_flops.json").read_text())) == 3
    assert len(probe_calls) == 3


def test_corrupt_cache_is_ignored_and_rewritten(cache_dir: Path, probe_calls: list) -> None:
    path = cache_dir / "peak_flops.json"
    path.write_text("{not json")
    assert measured_peak_flops("cpu", torch.float32, **TINY) > 0
    assert len(json.loads(path.read_text())) == 1
    assert not [p for p in cache_dir.iterdir() if p.name != "peak_flops.json"]  # no tmp left


def test_bad_entry_is_re_measured(cache_dir: Path, probe_calls: list) -> None:
    measured_peak_flops("cpu", torch.float32, **TINY)
    path = cache_dir / "peak_flops.json"
    path.write_text(json.dumps({k: {"flops_per_s": -1} for k in json.loads(path.read_text())}))
    assert measured_peak_flops("cpu", torch.float32, **TINY) > 0
    assert len(probe_calls) == 2


def test_cpu_probe_shrinks_for_a_slow_dtype() -> None:
    # The budget cannot fit 3 x 2048^3 matmuls, so the probe must pick a smaller n.
    flops_per_s, n = peak_mod._matmul_probe(torch.device("cpu"), torch.float32, 2048, budget_s=0.003)
    assert flops_per_s > 0 and n < 2048


def test_unsupported_dtype_is_an_hpml_error(cache_dir: Path) -> None:
    with pytest.raises(HpmlError, match="float32, bfloat16, float16"):
        measured_peak_flops("cpu", torch.int8)


@pytest.mark.gpu
def test_cuda_probe(cache_dir: Path) -> None:
    assert measured_peak_flops("cuda", torch.bfloat16, n=2048, budget_s=0.05) > 1e12


def test_refresh_keeps_the_highest_probe(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe disturbed by other load reads low; the peak is the maximum over probes."""
    readings = iter([100e9, 60e9, 150e9])
    monkeypatch.setattr(peak_mod, "_matmul_probe", lambda device, dtype, n, budget_s: (next(readings), n))
    assert measured_peak_flops("cpu", torch.float32, **TINY) == 100e9
    assert measured_peak_flops("cpu", torch.float32, refresh=True, **TINY) == 100e9  # 60e9 was a busy moment
    assert measured_peak_flops("cpu", torch.float32, refresh=True, **TINY) == 150e9
    assert measured_peak_flops("cpu", torch.float32, **TINY) == 150e9  # and the cache holds it
