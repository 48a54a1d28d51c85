"""Combining per-rank metrics into the run's metrics.

Each rank measures its own shard: its samples, its seconds, its loss and accuracy over
its part of the data.  :func:`reduce_metrics` gathers the dicts (once per epoch or
phase: negligible next to a training epoch) and combines them key by key, by the rule
each metric declares in :data:`hpml.results.metric_registry.METRICS` (sum, max, mean,
sample-weighted mean, or the same on every rank):

* counts, rates, bytes read and page faults add up (each rank's own process);
* durations and peak memory of one process take the worst rank;
* accuracy and losses are sample-weighted means (weights: each rank's evaluated
  samples), so they equal the single-process value over the union of the shards;
* ``train_loss`` is a plain mean: DistributedSampler gives every rank the same number
  of training samples;
* ``epoch``, ``step``, ``lr``, ``phase`` are the same on every rank: rank 0's.

>>> combine([{"accuracy": 0.5, "samples": 30, "samples_per_s": 100.0, "seconds": 2.0},
...          {"accuracy": 1.0, "samples": 10, "samples_per_s": 120.0, "seconds": 3.0}])
{'accuracy': 0.625, 'samples': 40, 'samples_per_s': 220.0, 'seconds': 3.0}
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch.distributed as dist

from hpml.results.metric_registry import reduce_rule

Metrics = Mapping[str, Any]

#: sample-weighted means are weighted by each rank's evaluated samples: ``test_samples``
#: in fit's epoch metrics (where ``samples`` counts training samples), else ``samples``
WEIGHT_KEYS = ("test_samples", "samples")


def _sum(values: list) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _max(values: list) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _mean(values: list) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _weighted(values: list, weights: list) -> Any:
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None and w]
    total = sum(w for _, w in pairs)
    if not total:  # no rank saw a sample: nothing to weight, keep rank 0's (nan)
        return values[0]
    return sum(v * w for v, w in pairs) / total


def combine(per_rank: Sequence[Metrics]) -> dict[str, Any]:
    """Combine the ranks' (or workers') metric dicts, in rank order, by each metric's
    declared rule; pure."""
    if not per_rank:
        return {}
    first = per_rank[0]
    weight_key = next((k for k in WEIGHT_KEYS if k in first), WEIGHT_KEYS[-1])
    weights = [m.get(weight_key) or 0 for m in per_rank]
    out: dict[str, Any] = {}
    for key in first:
        values = [m.get(key) for m in per_rank]
        how = reduce_rule(key)
        if how == "sum":
            out[key] = _sum(values)
        elif how == "max":
            out[key] = _max(values)
        elif how == "mean":
            out[key] = _mean(values)
        elif how == "weighted":
            out[key] = _weighted(values, weights)
        else:  # "same"
            out[key] = first[key]
    return out


def reduce_metrics(metrics: Metrics, group: dist.ProcessGroup | None = None) -> dict[str, Any]:
    """All ranks call this with their own metrics and all get the combined ones back
    (a collective: every rank must call it, in the same order).  Outside a process
    group it returns a copy unchanged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return dict(metrics)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, dict(metrics), group=group)
    return combine(gathered)

