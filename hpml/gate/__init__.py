"""Regression gating for hpml benchmark runs: ``hpml gate``.

* :mod:`hpml.gate.config` -- ``[tool.hpml.gate]`` thresholds from pyproject.toml;
* :mod:`hpml.gate.stats` -- the paired t-test across session pairs, permutation and Mann-Whitney U
  tests, Holm correction;
* :mod:`hpml.gate.checks` -- the checks and the printed table;
* :mod:`hpml.gate.revisions` -- ``--base REV``: session pairs of REV (a temporary worktree) and the working tree;
* the two sessions of a pair take turns call by call through :mod:`hpml.bench.baton`;
* :mod:`hpml.gate.command` -- argparse wiring: :func:`add_gate_arguments`, :func:`run_gate`;
* :mod:`hpml.gate.markdown` -- ``--markdown FILE``: the verdict as GitHub Markdown;
* :mod:`hpml.gate.bisect` -- ``hpml bisect GOOD BAD``: the first slower commit, by paired probes;

The gate reads results through :mod:`hpml.results` (the run summary, the runs); it
imports neither :mod:`hpml.report` nor torch.  The names below load on first use, so
importing :mod:`hpml.gate.config` alone (the report does) does not load the checks.
"""

from typing import Any

__all__ = ["add_gate_arguments", "run_gate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpml.gate import command

        return getattr(command, name)
    raise AttributeError(f"module 'hpml.gate' has no attribute {name!r}")
