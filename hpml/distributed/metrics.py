"""Combining per-rank metrics into the run's, by the rule each declares in :data:`hpml.results.metric_registry.METRICS`.

>>> combine([{"accuracy": 0.5, "samples": 30, "samples_per_s": 100.0, "seconds": 2.0},
...          {"accuracy": 1.0, "samples": 10, "samples_per_s": 120.0, "seconds": 3.0}])
{'accuracy': 0.625, 'samples': 40, 'samples_per_s': 220.0, 'seconds': 3.0}"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch.distributed as dist

from hpml.results.metric_registry import reduce_rule

Metrics = Mapping[str, Any]

#: weights of sample-weighted means: ``test_samples`` in fit's epochs (``samples`` counts training there)
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
    """Combine the ranks' (or workers') metric dicts, in rank order, by each metric's declared rule; pure."""
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
    """The ranks' combined metrics, on every rank (a collective); outside a process group a copy."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return dict(metrics)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, dict(metrics), group=group)
    return combine(gathered)

