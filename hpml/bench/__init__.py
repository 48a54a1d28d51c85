"""The benchmark suite's library: profiles, the matrix, workloads and the measuring harness.

``benchmarks/`` holds only thin pytest files; what they run lives here so it can be
imported and unit-tested (``tests/bench``):

* :mod:`hpml.bench.profiles`: ``smoke`` / ``standard`` / ``full`` sizes (``--hpml-profile``);
* :mod:`hpml.bench.matrix`: the rows, generated from the optimization and dataset
  registries, with the skip reason of every row that does not apply;
* :mod:`hpml.bench.workloads`: what one measured call of each phase runs;
* :mod:`hpml.bench.session`: how a row is paired and recorded (``extra_info``, skips);
* :mod:`hpml.bench.sides`: one side of a pair and its timed calls;
* :mod:`hpml.bench.planted`: planted regressions for testing the gate;
* :mod:`hpml.bench.baton`: the two sessions of ``hpml gate --base`` take turns call by call;
* :mod:`hpml.bench.paired`: the paired estimator, its bootstrap interval, the adaptive stop;
* :mod:`hpml.bench.fresh`: the two sides of a process-wide optimization in fresh processes;
* :mod:`hpml.bench.busy`: what else used the cores before and during a row;
* :mod:`hpml.bench.screen`: the matrix printed at the end, noise floors, significance;
* :mod:`hpml.bench.compat`: the one use of pytest-benchmark's private API;
* :mod:`hpml.bench.realdata`: small files in the real dataset formats;
* :mod:`hpml.bench.plugin`: the pytest hooks and fixtures ``benchmarks/conftest.py`` uses.
"""

from typing import Any

__all__ = ["PROFILES", "Profile", "get_profile", "list_profiles"]


def __getattr__(name: str) -> Any:
    # Lazy: the torch-free modules (paired, screen, busy) are read by
    # JSON-only commands (hpml gate's summaries), which must not pay torch's import.
    if name in __all__:
        from hpml.bench import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'hpml.bench' has no attribute {name!r}")
