"""The benchmark suite's pytest configuration: everything lives in :mod:`hpml.bench.plugin`.

Run ``pytest benchmarks`` (smoke profile on CPU); ``--hpml-profile standard|full`` for
bigger sizes; ``--benchmark-autosave`` to store results under ``.benchmarks/`` and
``--benchmark-compare`` to compare with the last stored run; ``--benchmark-disable``
runs every benchmark body once, unmeasured (CI).
"""

from hpml.bench.plugin import (  # noqa: F401  (pytest finds hooks and fixtures by name)
    hpml_bench,
    hpml_profile,
    pytest_addoption,
    pytest_benchmark_update_machine_info,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtestloop,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
