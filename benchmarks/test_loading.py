"""Data loading: loader knobs x dataset x device, from real-format files and from the
synthetic twin.  A measured call is one pass over ``load_batches`` batches, copied to
the device, with no compute."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("load")
pytest_generate_tests = PHASE.parametrize


def test_loading(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
