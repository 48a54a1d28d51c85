"""End-to-end slices: loader + step over ``e2e_batches`` batches of real-format data, so
loader optimizations show their effect on training throughput; ``extra_info["phases"]``
splits each call into loading and training time."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("end_to_end")
pytest_generate_tests = PHASE.parametrize


def test_end_to_end(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
