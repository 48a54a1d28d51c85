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
    assert len(probe_calls) == peak_mod.PROBE_REPEATS  # the second call read the cache

    measured_peak_flops("cpu", torch.float32, refresh=True, **TINY)
    assert len(probe_calls) == 2 * peak_mod.PROBE_REPEATS


def test_each_dtype_has_its_own_entry(cache_dir: Path, probe_calls: list) -> None:
    for dtype in ("float32", "bf16", torch.float16):
        assert measured_peak_flops("cpu", dtype, **TINY) > 0
    assert len(json.loads((cache_dir / "peak_flops.json").read_text())) == 3
    assert len(probe_calls) == 3 * peak_mod.PROBE_REPEATS


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
    assert len(probe_calls) == 2 * peak_mod.PROBE_REPEATS


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


def fake_probes(monkeypatch: pytest.MonkeyPatch, readings: list[float]) -> list[int]:
    """Replace the best-of-N probe by ``readings`` (FLOP/s, in order); returns the call log."""
    it = iter(readings)
    calls: list[int] = []

    def probe(device, dtype, n, budget_s):
        calls.append(torch.get_num_threads())
        return next(it), n

    monkeypatch.setattr(peak_mod, "_matmul_probe", probe)
    return calls


def test_the_peak_is_the_median_of_repeated_probes(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One glitched probe (a timer glitch reading 5x) does not become the peak."""
    fake_probes(monkeypatch, [500e9, 100e9, 101e9, 99e9, 102e9])
    est = peak_mod.peak_estimate("cpu", torch.float32, **TINY)
    assert est.flops_per_s == 101e9 and len(est.probes) == peak_mod.PROBE_REPEATS
    assert measured_peak_flops("cpu", torch.float32, **TINY) == 101e9  # cached


def test_a_re_probe_replaces_the_cached_peak_and_flags_a_drift(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_probes(monkeypatch, [100e9] * 5 + [60e9] * 5 + [62e9] * 5)
    assert measured_peak_flops("cpu", torch.float32, **TINY) == 100e9
    est = peak_mod.peak_estimate("cpu", torch.float32, refresh=True, **TINY)
    assert est.flops_per_s == 60e9 and est.previous == 100e9  # not the maximum of the two
    assert any("drift" in f for f in est.flags)
    assert measured_peak_flops("cpu", torch.float32, **TINY) == 60e9  # the cache holds the new one
    again = peak_mod.peak_estimate("cpu", torch.float32, refresh=True, **TINY)
    assert again.flops_per_s == 62e9 and not again.flags  # within 20 % of the previous


def test_a_run_at_another_thread_count_gets_its_own_probe(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_probes(monkeypatch, [100e9] * 5 + [50e9] * 5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = peak_mod.peak_estimate("cpu", torch.float32, **TINY)
        torch.set_num_threads(2)
        two = peak_mod.peak_estimate("cpu", torch.float32, **TINY)
    finally:
        torch.set_num_threads(threads)
    assert (one.threads, two.threads) == (1, 2)
    assert calls == [1] * 5 + [2] * 5  # each probed at the count it is for
    assert (one.flops_per_s, two.flops_per_s) == (100e9, 50e9)


def test_theoretical_cpu_peak_is_cores_times_clock_times_simd() -> None:
    avx2 = ({"avx", "avx2", "fma"}, 2000.0)
    flops, basis = peak_mod.theoretical_cpu_peak(torch.float32, 2, cpuinfo=avx2)
    assert flops == 2 * 2000e6 * 32 and "2 cores" in basis and "2000 MHz" in basis
    assert peak_mod.theoretical_cpu_peak(torch.bfloat16, 2, cpuinfo=avx2) is None  # bf16 emulated: not derivable
    flops, _ = peak_mod.theoretical_cpu_peak("bf16", 1, cpuinfo=({"avx512f", "avx512_bf16"}, 3000.0))
    assert flops == 3000e6 * 128
    assert peak_mod.theoretical_cpu_peak(torch.float32, 2, cpuinfo=(set(), 2000.0)) is None
    assert peak_mod.theoretical_cpu_peak(torch.float32, 2, cpuinfo=({"avx2", "fma"}, None)) is None


def test_a_measured_peak_above_the_theoretical_and_a_fraction_above_one_are_flagged(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peak_mod, "_cpu_flags_and_mhz", lambda: ({"avx2", "fma"}, 1000.0))
    fake_probes(monkeypatch, [1e15] * 5)  # far above cores x 1 GHz x 32
    est = peak_mod.peak_estimate("cpu", torch.float32, **TINY)
    assert est.theoretical_flops_per_s is not None
    assert any("above the theoretical" in f for f in est.flags)
    assert any("peak_fraction 1.30 > 1" in f for f in peak_mod.peak_flags(1.3, est))
    assert peak_mod.peak_flags(0.5) == []


def test_amx_sets_the_bf16_bound_and_the_basis_names_the_clock_source() -> None:
    flops, basis = peak_mod.theoretical_cpu_peak("bf16", 2, cpuinfo=({"avx512_bf16", "amx_bf16", "amx_tile"}, 2000.0))
    assert flops == 2 * 2000e6 * 1024 and "AMX" in basis and "cpuinfo_max_freq" in basis
    flops, _ = peak_mod.theoretical_cpu_peak("bf16", 2, cpuinfo=({"avx512_bf16"}, 2000.0))
    assert flops == 2 * 2000e6 * 128


def test_without_a_rated_max_clock_the_bound_is_unknown(monkeypatch, tmp_path) -> None:
    """/proc/cpuinfo's MHz is the current clock (a VM's TSC rate): a Zen 5 bf16 probe measured
    821 GFLOP/s against a "theoretical" 665 derived from it."""
    import builtins

    real_open = builtins.open

    def no_cpufreq(path, *args, **kwargs):
        if "cpufreq" in str(path):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_cpufreq)
    flags, mhz = peak_mod._cpu_flags_and_mhz()
    assert mhz is None
    assert peak_mod.theoretical_cpu_peak("bf16", 2, cpuinfo=({"avx512_bf16"}, mhz)) is None


def test_a_fraction_above_one_on_an_emulated_dtype_names_the_emulation() -> None:
    [flag] = peak_mod.peak_flags(3.55, None, emulated=True)
    assert "3.55 > 1" in flag and "emulated" in flag
