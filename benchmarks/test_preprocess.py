"""Pre-processing per sample: CIFAR from uint8, ImageNet JPEG decode + RandomResizedCrop,
text tokenization, from real-format files and from the synthetic twin."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("preprocess")
pytest_generate_tests = PHASE.parametrize


def test_preprocess(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
