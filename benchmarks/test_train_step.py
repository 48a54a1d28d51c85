"""One optimizer step: every optimization x dataset x device (SGD; baseline and
composites also with Adam).  A measured call is one ``train_step`` over pre-built
batches (``accum_steps`` micro-batches for grad_accum, counted in samples_per_round)."""

from hpml.bench import matrix, workloads
from hpml.bench.plugin import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc, matrix.train_cases)


def test_train_step(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.train_step_workload)
