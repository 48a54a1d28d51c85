"""hpml's ``train_step`` against the hand-written step every PyTorch user writes, doing the
same work (same model, batch, optimizer hyper-parameters and loss; forward under or
without autocast, loss, backward, SGD step, zero_grad), on the CIFAR-10 ResNet-50 on CPU,
in fp32 (``baseline``), bf16 autocast (``amp_bf16``) and ``channels_last``.

Rows measured one after the other drift apart on a small machine by more than the
effects measured here, so each row is paired with its hand-written twin by the harness's
interleaved reference steps (``A B B A ...``, :meth:`hpml.bench.session.BenchSession.run`'s
``reference``): ``speedup_vs_baseline`` is hpml's samples/s over the hand-written step's,
with its interval (> 1: hpml was faster), and ``reference`` names the hand-written side.
Phase ``overhead``: the gate can hold it (``"overhead:cifar10:cpu:baseline" = 0.9``)."""

from hpml.bench.phase_builds import PHASE_BUILDS

PHASE = PHASE_BUILDS.get("overhead")
pytest_generate_tests = PHASE.parametrize


def test_step_overhead(benchmark, hpml_bench, case):
    PHASE.run(benchmark, hpml_bench, case)
