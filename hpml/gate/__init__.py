"""Regression gating for hpml benchmark runs: ``hpml gate``.

* :mod:`hpml.results.summary` -- the per-run summary JSON (same-run speedups);
* :mod:`hpml.gate.config` -- ``[tool.hpml.gate]`` thresholds from pyproject.toml;
* :mod:`hpml.gate.stats` -- Mann-Whitney U, bootstrap interval, Holm correction;
* :mod:`hpml.gate.checks` -- the checks and the printed table;
* :mod:`hpml.gate.revisions` -- ``--base REV``: interleaved runs in a temporary worktree;
* :mod:`hpml.gate.command` -- argparse wiring: :func:`add_gate_arguments`, :func:`run_gate`;
* :mod:`hpml.gate.power` -- ``python -m hpml.gate.power``: false alarms and detection of CI's A/B gate.
"""

from hpml.gate.command import add_gate_arguments, run_gate

__all__ = ["add_gate_arguments", "run_gate"]
