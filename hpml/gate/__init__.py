"""Regression gating for hpml benchmark runs: ``hpml gate`` (docs/gate.md).  It reads results through
:mod:`hpml.results` only, without torch; the names below load on first use."""

from typing import Any

__all__ = ["add_gate_arguments", "run_gate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpml.gate import command

        return getattr(command, name)
    raise AttributeError(f"module 'hpml.gate' has no attribute {name!r}")
