"""End-to-end slices: loader + step over ``e2e_batches`` batches of real-format data, so
loader optimizations show their effect on training throughput; ``extra_info["phases"]``
splits each call into loading and training time."""

from hpml.bench import matrix, workloads
from hpml.bench.plugin import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc, matrix.end_to_end_cases)


def test_end_to_end(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.end_to_end_workload)
