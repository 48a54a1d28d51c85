"""Inference: an eval forward with each optimization that changes the forward pass
(autocast, channels_last, compile, cuDNN/TF32 flags) x dataset x device."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("inference")
pytest_generate_tests = PHASE.parametrize


def test_inference(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
