"""How measured quantities are printed (gate tables and the report share these)."""

from __future__ import annotations


def fmt_time(seconds: float) -> str:
    """A duration with a unit a human reads at a glance (s, ms or us)."""
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"
