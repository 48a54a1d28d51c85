"""What a benchmark run measured, as stored JSON: the schema benchmarks write and
``hpml report`` / ``hpml gate`` read.

A leaf package: it imports nothing from hpml but :mod:`hpml.errors`, :mod:`hpml.files` and
itself, and never torch, so the JSON-only commands start fast (``tests/results/test_imports.py``).

* :mod:`hpml.results.schema` -- the case key (with ``world_size``), :class:`Run` and
  :class:`Benchmark` rows of a pytest-benchmark run, convergence records;
* :mod:`hpml.results.runfiles` -- finding run files on disk, and the one reader of them;
* :mod:`hpml.results.summary` -- the run summary (same-run speedups) the benchmark plugin writes;
* :mod:`hpml.results.machine_facts` -- the one parser of ``machine_info`` (facts, comparability, CPU class);
* :mod:`hpml.results.bootstrap` -- the bootstrap interval a summary's ``speedup_spread`` is;
* :mod:`hpml.results.units` -- how durations are printed.
"""
