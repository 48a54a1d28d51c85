"""One optimizer step: every optimization x dataset x device (SGD; baseline and
composites also with Adam).  A measured call is one ``train_step`` over pre-built
batches (``accum_steps`` micro-batches for grad_accum, counted in samples_per_round)."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("train")
pytest_generate_tests = PHASE.parametrize


def test_train_step(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
