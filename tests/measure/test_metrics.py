"""Metric declarations: every key hpml records says how processes combine it."""

from __future__ import annotations

import dataclasses

import pytest

from hpml.distributed.metrics import combine
from hpml.measure.metrics import METRICS, Metric
from hpml.measure.phases import PhaseStats

#: Keys of fit's per-epoch metrics and of the train phase's additions (hpml/train).
EPOCH_KEYS = ("epoch", "step", "train_loss", "lr", "seconds", "samples", "samples_per_s",
              "accuracy", "top5", "test_loss", "test_samples")
TRAIN_PHASE_KEYS = ("warmup_steps", "warmup_seconds", "steady_seconds", "steady_samples")


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(PhaseStats)] + list(EPOCH_KEYS + TRAIN_PHASE_KEYS))
def test_every_recorded_key_declares_its_rule(key):
    assert key in METRICS, f"{key} has no declared combine rule in hpml.measure.metrics"


def test_faults_of_the_ranks_add_up_and_peaks_take_the_worst():
    ranks = [{"minor_faults": 100, "worker_minor_faults": 10, "peak_device_bytes": 5, "peak_rss_bytes": 7},
             {"minor_faults": 300, "worker_minor_faults": 30, "peak_device_bytes": 9, "peak_rss_bytes": 3}]
    assert combine(ranks) == {"minor_faults": 400, "worker_minor_faults": 40, "peak_device_bytes": 9,
                              "peak_rss_bytes": 7}


def test_a_rule_must_be_one_of_the_known_ones():
    with pytest.raises(ValueError, match="sum, max, mean, weighted, same"):
        Metric("x", "s", "median")


class InProcessPool:
    """Stands in for a RankPool: runs each "rank" function here, one store per rank."""

    def __init__(self, world_size: int) -> None:
        import torch
        from types import SimpleNamespace

        from hpml.distributed.env import DistEnv

        self.envs = [DistEnv(rank=r, world_size=world_size, local_rank=r, local_world_size=world_size)
                     for r in range(world_size)]
        self.stores = [{"state": SimpleNamespace(device=torch.device("cpu"))} for _ in range(world_size)]

    def call(self, fn, *args):
        return [fn(env, store, *args) for env, store in zip(self.envs, self.stores)]


def test_ddp_rows_measure_memory_in_each_rank_and_sum_their_faults():
    from hpml.distributed import bench

    pool = InProcessPool(2)
    pool.call(bench._track_start)
    blocks = [b"\x01" * (32 << 20) for _ in range(2)]  # 8,192 fresh pages each, while both "ranks" track
    out = bench.rank_memory(pool, calls=1)
    assert len(blocks[0]) == 32 << 20
    # both in-process "ranks" saw all 16,384 pages: summed, so at least twice one rank's count
    assert out["rank_minor_faults"] >= 2 * (2 * (32 << 20) // 4096) // 2
    assert out["rank_peak_rss_bytes"] > 0 and out["rank_peak_device_bytes"] == 0
