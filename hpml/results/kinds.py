"""The kind of a benchmark row: the unit in which run-to-run noise is measured and reported."""

from __future__ import annotations

from typing import Any


def kind_of_row(info: dict[str, Any]) -> str:
    """A row's phase, with loading rows split by whether the loader runs worker processes (their
    speedup moves with the machine's state for seconds to minutes: docs/studies/loading-drift.md)."""
    phase = str(info.get("phase", "?"))
    if phase == "load":
        return "load, worker processes" if info.get("num_workers") else "load, in process"
    return phase
