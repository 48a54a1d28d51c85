"""What a benchmark run measured, as stored JSON: the schema benchmarks write and ``hpml report`` /
``hpml gate`` read.  A torch-free leaf: it imports only :mod:`hpml.errors` and :mod:`hpml.files`."""
