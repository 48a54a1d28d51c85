"""Data loading: loader knobs x dataset x device, from real-format files and from the
synthetic twin.  A measured call is one pass over ``load_batches`` batches, copied to
the device, with no compute."""

from hpml.bench import matrix, workloads
from hpml.bench.plugin import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc, matrix.loading_cases)


def test_loading(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.loading_workload)
