"""Metric declarations: every key hpml records says how processes combine it."""

from __future__ import annotations

import dataclasses
import time

import pytest

from hpml.distributed.metrics import combine
from hpml.results.metric_registry import METRICS, Metric
from hpml.measure.phase_stats import PhaseStats, measure_phase
from hpml.measure.tracker_registry import TRACKERS, tracked_metrics
from hpml.measure.tracking import Tracker
from hpml.results.metric_registry import per_unit

#: Keys of fit's per-epoch metrics and of the train phase's additions (hpml/train).
EPOCH_KEYS = ("epoch", "step", "train_loss", "lr", "seconds", "samples", "samples_per_s",
              "accuracy", "top5", "test_loss", "test_samples")
TRAIN_PHASE_KEYS = ("warmup_steps", "warmup_seconds", "steady_seconds", "steady_samples")


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(PhaseStats) if f.name != "more"]
                         + list(EPOCH_KEYS + TRAIN_PHASE_KEYS) + tracked_metrics())
def test_every_recorded_key_declares_its_rule(key):
    assert key in METRICS, f"{key} has no declared combine rule in hpml.results.metric_registry"


def _busy_region() -> bytes:
    """A region every tracker sees something in: fresh pages, a file read, and >= 50 ms of CPU
    (CPU clocks tick every 10 ms)."""
    block = b"\x01" * (8 << 20)  # 2,048 fresh pages
    with open(__file__, "rb") as f:
        text = f.read()
    start, total = time.process_time(), 0
    while time.process_time() - start < 0.05:
        total += sum(block[::4096])
    return block + text + bytes([total % 256])


@pytest.mark.parametrize("name", TRACKERS.names())
def test_each_registered_tracker_returns_exactly_its_declared_metrics(name):
    spec = TRACKERS.get(name)
    tracker = spec.make("cpu", 0.01)
    assert isinstance(tracker, Tracker)
    tracker.start()
    kept = _busy_region()
    values = tracker.stop()
    assert len(kept) > 8 << 20
    assert set(values) == set(spec.metrics) and set(values) <= set(METRICS)
    # something was measured: a tracker that returns only None would pass the line above
    assert any(v not in (None, 0) for v in values.values()), values


def test_the_tracked_metrics_reach_a_phase_record_by_name():
    with measure_phase("train", "cpu", samples=4) as m:
        kept = _busy_region()
    record = m.stats.as_dict()
    assert len(kept) > 0 and set(tracked_metrics()) <= set(record)
    for name in tracked_metrics():  # "sample" metrics are per sample, the rest the phase's totals
        assert record[name] is None or isinstance(record[name], (int, float, str)), name


def test_per_unit_divides_call_and_sample_metrics_and_keeps_the_rest():
    totals = {"read_bytes": 1000, "peak_rss_bytes": 500, "rss_method": "vmhwm", "minor_faults": None}
    assert per_unit(totals, calls=10, samples=40) == {"read_bytes": 100, "peak_rss_bytes": 500,
                                                       "rss_method": "vmhwm", "minor_faults": None}
    for metric in METRICS.values():
        if metric.per == "sample":
            assert per_unit({metric.name: 8.0}, calls=2, samples=4) == {metric.name: 2.0}


def test_a_metric_direction_says_which_way_is_worse():
    assert METRICS["peak_rss_bytes"].worse(120, 100) == pytest.approx(0.2)
    assert METRICS["samples_per_s"].worse(120, 100) == pytest.approx(-0.2)
    assert METRICS["epoch"].worse(2, 1) is None
    with pytest.raises(ValueError, match="better must be"):
        Metric("x", "s", "sum", better="up")


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
    from hpml.bench import ddp as bench

    pool = InProcessPool(2)
    pool.call(bench._track_start)
    blocks = [b"\x01" * (32 << 20) for _ in range(2)]  # 8,192 fresh pages each, while both "ranks" track
    out = bench.rank_memory(pool, calls=1)
    assert len(blocks[0]) == 32 << 20
    # both in-process "ranks" saw all 16,384 pages: summed, so at least twice one rank's count
    assert out["rank_minor_faults"] >= 2 * (2 * (32 << 20) // 4096) // 2
    assert out["rank_peak_rss_bytes"] > 0 and out["rank_peak_device_bytes"] == 0
