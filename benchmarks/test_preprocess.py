"""Pre-processing per sample: CIFAR from uint8, ImageNet JPEG decode + RandomResizedCrop,
text tokenization, from real-format files and from the synthetic twin."""

from hpml.bench import matrix, workloads
from hpml.bench.plugin import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc, matrix.preprocess_cases)


def test_preprocess(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.preprocess_workload)
