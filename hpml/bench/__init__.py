"""The benchmark suite's library: profiles, the matrix, workloads and the measuring harness.

``benchmarks/`` holds only thin pytest files; what they run lives here so it can be
imported and unit-tested (``tests/bench``):

* :mod:`hpml.bench.profiles`: ``smoke`` / ``standard`` / ``full`` sizes (``--hpml-profile``);
* :mod:`hpml.bench.matrix`: the rows, generated from the optimization and dataset
  registries, with the skip reason of every row that does not apply;
* :mod:`hpml.bench.workloads`: what one measured call of each phase runs;
* :mod:`hpml.bench.harness`: how it is timed and recorded (``extra_info``, same-run
  speedups, out-of-memory skips, the planted slowdown for gate tests);
* :mod:`hpml.bench.realdata`: small files in the real dataset formats;
* :mod:`hpml.bench.plugin`: the pytest hooks and fixtures ``benchmarks/conftest.py`` uses.
"""

from hpml.bench.profiles import PROFILES, Profile, get_profile, list_profiles

__all__ = ["PROFILES", "Profile", "get_profile", "list_profiles"]
