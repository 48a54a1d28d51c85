"""What a benchmark run measured, as stored JSON: the schema benchmarks write and
``hpml report`` / ``hpml gate`` read.

A leaf package: it imports nothing from hpml but :mod:`hpml.errors` and itself, and
never torch, so the JSON-only commands start fast.

* :mod:`hpml.results.schema` -- the case key, :class:`Run` and :class:`Benchmark` rows of a
  pytest-benchmark run, convergence records, and finding them on disk;
* :mod:`hpml.results.summary` -- the run summary (same-run speedups) the benchmark plugin writes.
"""
