"""Regression gating for hpml benchmark runs: ``hpml gate``.

* :mod:`hpml.gate.summary` -- the per-run summary JSON (same-run speedups);
* :mod:`hpml.gate.config` -- ``[tool.hpml.gate]`` thresholds from pyproject.toml;
* :mod:`hpml.gate.stats` -- the paired sign-flip test, permutation and Mann-Whitney U tests, bootstrap
  intervals, Holm correction;
* :mod:`hpml.gate.gate` -- the checks and the printed table;
* :mod:`hpml.gate.revisions` -- ``--base REV``: session pairs of REV (a temporary worktree) and the working tree;
* :mod:`hpml.gate.baton` -- the two sessions of a pair take turns call by call (stdlib only);
* :mod:`hpml.gate.command` -- argparse wiring: :func:`add_gate_arguments`, :func:`run_gate`;
* :mod:`hpml.gate.power` -- ``python -m hpml.gate.power``: false alarms and detection of CI's A/B gate.
"""

from hpml.gate.command import add_gate_arguments, run_gate

__all__ = ["add_gate_arguments", "run_gate"]
