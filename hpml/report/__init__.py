"""Benchmark reports: ``hpml report`` (Markdown, HTML, PNG charts; docs/report.md).  Of the gate it reads
only which rows are gated (:mod:`hpml.gate.config`); the names below load on first use."""

from typing import Any

__all__ = ["add_report_arguments", "run_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpml.report import command

        return getattr(command, name)
    raise AttributeError(f"module 'hpml.report' has no attribute {name!r}")
