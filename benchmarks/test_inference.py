"""Inference: an eval forward with each optimization that changes the forward pass
(autocast, channels_last, compile, cuDNN/TF32 flags) x dataset x device."""

from hpml.bench import matrix, workloads
from hpml.bench.plugin import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc, matrix.inference_cases)


def test_inference(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.inference_workload)
