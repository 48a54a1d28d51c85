"""Convergence records: one JSON file per seed under ``<benchmark storage>/convergence/`` (README, Records).

A case run over seeds is a group ``<case>_<UTC timestamp>``; each seed writes ``<group>_seed<k>.json``
atomically, and once all seeds are done every record carries the group's summary."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpml.machine import git_commit, machine_info
from hpml.files import write_text_atomic

if TYPE_CHECKING:
    from hpml.convergence.recipes import ConvergenceCase
    from hpml.convergence.run import SeedRun, Summary
    from hpml.convergence.weights import Weights

SCHEMA = 1
FOLDER = "convergence"


def group_id(case_name: str, now: datetime | None = None) -> str:
    """``<case>_<UTC timestamp to the millisecond>``: sorts by time within a case."""
    now = now or datetime.now(timezone.utc)
    return f"{case_name}_{now.strftime('%Y%m%dT%H%M%S')}{now.microsecond // 1000:03d}Z"


def record_path(store: str | Path, group: str, seed: int) -> Path:
    return Path(store) / f"{group}_seed{seed}.json"


def _finite(value: Any) -> Any:
    """JSON has no NaN: a non-finite float becomes null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def make_record(
    case: "ConvergenceCase",
    *,
    group: str,
    seed: int,
    run: "SeedRun",
    summary: "Summary | None",
    error: str | None = None,
    weights: "Weights | None" = None,
) -> dict[str, Any]:
    """The record of one seed (``summary``: the group's, or this seed's alone)."""
    cfg = run.config
    last = run.epochs[-1] if run.epochs else {}
    accuracies = summary.accuracies if summary else []
    return {
        "hpml_schema": SCHEMA,
        "kind": "convergence",
        "case": case.name,
        "group": group,
        "seed": seed,
        "dataset": case.dataset,
        "model": case.model,
        "optimizer": case.optimizer,
        "optimization": case.optimization,
        "expanded_optimizations": list(cfg.expanded_optimizations),
        "device": cfg.device,
        "pretrained": case.pretrained,
        "weights": str(weights.path) if weights else None,
        "target": case.target.value,
        "metric": case.target.metric,
        "target_source": case.target.source,
        "target_measured_by_hpml": case.target.measured_by_hpml,
        "reached": error is None and run.reached,
        "time_to_target_s": run.time_to_target_s if error is None else None,
        "final_accuracy": _finite(last.get("accuracy")),
        "final_top5": _finite(last.get("top5")),
        "seeds": list(summary.seeds) if summary else [],
        "accuracy_mean": _finite(summary.mean) if summary else None,
        "accuracy_std": summary.std if summary else None,
        "accuracy_min": min(accuracies) if accuracies else None,
        "accuracy_max": max(accuracies) if accuracies else None,
        "epochs": [{k: _finite(v) for k, v in e.items()} for e in run.epochs],
        "recipe": case.recipe.as_dict(),
        "config": cfg.as_dict(),
        "machine": machine_info(),
        "commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "error": error,
    }


def write_record(record: dict[str, Any], store: str | Path) -> Path:
    """Write ``record`` atomically into ``store``; returns its path."""
    path = record_path(store, record["group"], record["seed"])
    text = json.dumps(record, indent=2, sort_keys=False, default=str) + "\n"
    write_text_atomic(path, text, parents=True)
    return path


def read_records(store: str | Path, case: str | None = None) -> list[dict[str, Any]]:
    """Every record in ``store`` (of ``case`` when given), by file name: case, then time."""
    out = []
    for path in sorted(Path(store).glob("*.json")):
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj.get("kind") == "convergence" and (case is None or obj.get("case") == case):
            out.append(obj)
    return out
