"""Distributed data-parallel training: throughput at world size 1 and 2 (gloo on CPU,
nccl on CUDA), scaling efficiency, and the effect of grad accumulation (fewer
all-reduces), bucket size, gradient_as_bucket_view, static graph, SyncBatchNorm and
FSDP.  Rows and ``extra_info`` keys: :mod:`hpml.bench.ddp`."""

from __future__ import annotations

import pytest

from hpml.bench.plugin import profile_of
from hpml.bench import ddp as bench

pytestmark = pytest.mark.ddp


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        profile = profile_of(metafunc.config)
        metafunc.parametrize("case", [
            pytest.param(c, id=c.id, marks=[pytest.mark.gpu] if c.device == "cuda" else [])
            for c in bench.ddp_cases(profile)
        ])


@pytest.fixture(scope="module")
def pools():
    """One pool of ranks per (device, world size), started on first use."""
    from hpml.distributed.pool import RankPool

    started: dict[tuple[str, int], RankPool] = {}

    def get(device: str, world_size: int) -> RankPool:
        if (device, world_size) not in started:
            threads = bench.CPU_THREADS if device == "cpu" else None
            started[device, world_size] = RankPool(world_size, device=device, timeout=300, threads=threads)
        return started[device, world_size]

    yield get
    for pool in started.values():
        pool.close()


def test_ddp(benchmark, hpml_bench, case, pools):
    reason = bench.unavailable(case)
    if reason:
        pytest.skip(reason)
    pool = pools(case.device, case.world_size)
    # Not paired: a rank pool holds one workload at a time, so a DDP row and its
    # baseline cannot alternate; these rows carry no interval (speedup_interval null).
    hpml_bench.run(benchmark, case, lambda c, session: bench.ddp_workload(c, session, pool), paired=False)
    if "samples_per_s" not in benchmark.extra_info:
        return
    benchmark.extra_info["ddp_buckets"] = bench.bucket_count(pool)
    if case.world_size > 1:
        benchmark.extra_info["scaling_efficiency"] = bench.scaling_efficiency(
            hpml_bench, case, benchmark.extra_info["samples_per_s"])
