"""Full runs on real data (digits): every optimization, resume, divergence, accuracy."""

from __future__ import annotations

import json

import pytest
import torch

from hpml.errors import HpmlError, RunFailed
from hpml.train import list_optimizations
from hpml.train.build import build_training
from hpml.train.checkpoint import CHECKPOINT_NAME, save_checkpoint
from hpml.train.fit import check_finite, fit, micro_groups
from hpml.train.optimizations import OPTIMIZATIONS
from hpml.train.run_config import RunConfig

# 8 px (the digits convergence recipe's side): what these tests check does not depend on the side,
# and at 32 px the emulated-bf16 steps of amp/amp_bf16 alone took ~20 s on an AVX2 CPU.
SMALL = dict(model="resnet18", dataset="digits", device="cpu", batch_size=8, train_size=32, test_size=16, image_size=8)


def _one_step_case(name: str):
    marks = [pytest.mark.slow] if name == "compile" else []  # ~40 s of compilation on 2 cores
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_one_step_case(n) for n in list_optimizations()])
def test_every_optimization_runs_a_step_on_cpu_or_says_why(name):
    opt = OPTIMIZATIONS.get(name)
    reason = None if opt.composite else opt.unavailable_reason("cpu")
    if reason:
        with pytest.raises(HpmlError, match=name):
            RunConfig(**SMALL, optimizations=(name,), steps=1)
        pytest.skip(reason)
    work = build_training(RunConfig(**SMALL, optimizations=(name,), steps=1, evaluate=False, accum_steps=2))
    before = [p.detach().clone() for p in work.state.module.parameters()]
    result = fit(work, progress=False)
    assert result["steps"] == 1
    assert result["train_samples"] == 8 * work.settings.accum_steps
    assert any(not torch.equal(a, b) for a, b in zip(before, work.state.module.parameters()))


def test_micro_groups_keep_a_short_last_group():
    groups = list(micro_groups(range(7), 3))
    assert groups == [[0, 1, 2], [3, 4, 5], [6]]


def test_steps_limit_and_grad_accum_count_optimizer_steps():
    work = build_training(RunConfig(**SMALL, optimizations=("grad_accum",), accum_steps=3, epochs=2, evaluate=False))
    # 32 samples / batch 8 = 4 micro-batches per epoch -> groups of 3 + 1 = 2 steps per epoch
    assert work.steps_per_epoch == 2
    assert fit(work, progress=False)["steps"] == 4


def _interrupt_after_first_epoch(metrics):
    if metrics["epoch"] == 1:
        raise KeyboardInterrupt  # as if the run were killed right after the epoch-1 checkpoint


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    cfg = RunConfig(**SMALL, epochs=3, seed=3, schedule="cosine")
    straight = build_training(cfg)
    fit(straight, progress=False)

    first = build_training(cfg)
    with pytest.raises(KeyboardInterrupt):
        fit(first, checkpoint_dir=tmp_path, progress=False, on_epoch=_interrupt_after_first_epoch)
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    resumed = build_training(cfg)
    result = fit(resumed, checkpoint_dir=tmp_path, resume=True, progress=False, log_path=tmp_path / "m.jsonl")
    assert [m["epoch"] for m in result["epochs"]] == [2, 3]
    for a, b in zip(straight.state.module.state_dict().values(), resumed.state.module.state_dict().values()):
        assert torch.equal(a, b)
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [2, 3] and "accuracy" in lines[-1]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    work = build_training(RunConfig(**SMALL, steps=1))
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, work.state)
    good = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, work.state)
    assert path.read_bytes() == good  # the previous checkpoint survived the failed write
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temp file left


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    work = build_training(RunConfig(**SMALL, steps=1))
    with pytest.raises(HpmlError, match="no checkpoint to resume from"):
        fit(work, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_check_finite_names_the_first_bad_step():
    losses = [torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(float("inf"))]
    with pytest.raises(RunFailed, match=r"loss became nan at step 12 \(epoch 2\)"):
        check_finite(losses, first_step=10, epoch=1, last_good={"epoch": 1})
    check_finite([torch.tensor(1.0)], 0, 0, {})  # finite: no error


def test_divergence_stops_with_the_step_not_a_hang():
    work = build_training(RunConfig(**SMALL, epochs=1, lr=1e12, momentum=0.0, weight_decay=0.0, evaluate=False))
    with pytest.raises(RunFailed, match=r"loss became (nan|inf) at step \d+ \(epoch 1\)"):
        fit(work, progress=False)


@pytest.mark.slow  # ~25 s; the default run trains digits to its target in tests/convergence/test_digits.py
def test_digits_real_data_reaches_90_percent():
    """Real handwritten digits at their native 8x8 resolution (about 20 s on 2 cores)."""
    cfg = RunConfig(model="resnet18", dataset="digits", device="cpu", image_size=8, batch_size=32, epochs=2,
                    optimizer="sgd", lr=0.02, schedule="onecycle", warmup_epochs=0.3,
                    optimizations=("optimized",))
    result = fit(build_training(cfg), progress=False)
    assert result["final"]["accuracy"] >= 0.90, result["final"]


class StepClock:
    """Stands in for fit's ``time``: each training step "takes" 10 s first, then 1 s."""

    def __init__(self) -> None:
        self.now = 0.0
        self.steps = 0

    def perf_counter(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 10.0 if self.steps == 0 else 1.0
        self.steps += 1


def test_warm_up_steps_are_timed_apart_from_the_steady_state(monkeypatch):
    import hpml.train.fit as fit_module
    from hpml.train.run import run, summary_lines

    clock = StepClock()
    real_step = fit_module.train_step

    def timed_step(state, group):
        out = real_step(state, group)
        clock.tick()
        return out

    monkeypatch.setattr(fit_module, "time", clock)
    monkeypatch.setattr(fit_module, "train_step", timed_step)
    # 32 samples / batch 8 = 4 steps per epoch; 6 steps over 2 epochs
    record = run(RunConfig(**SMALL, steps=6, evaluate=False), progress=False)
    train = record["phases"]["train"]
    assert train["warmup_steps"] == fit_module.WARMUP_STEPS == 2
    assert train["warmup_seconds"] == pytest.approx(10.0 + 1.0)  # the first two steps
    assert train["seconds"] == pytest.approx(10.0 + 5 * 1.0) and train["samples"] == 6 * 8  # every step
    assert train["steady_seconds"] == pytest.approx(4.0) and train["steady_samples"] == 4 * 8
    assert train["samples_per_s"] == record["train_samples_per_s"] == pytest.approx(32 / 4.0)
    assert any("the first 2 of 6 steps" in line for line in summary_lines(record))


def test_a_one_step_run_is_all_warm_up_and_claims_no_throughput():
    from hpml.train.run import run, summary_lines

    record = run(RunConfig(**SMALL, steps=1, evaluate=False), progress=False)
    assert record["phases"]["train"]["warmup_steps"] == 1
    assert record["train_samples_per_s"] is None and record["peak_fraction"] is None
    assert any("every step was warm-up" in line for line in summary_lines(record))


def test_resume_loads_on_the_cpu_and_restores_cpu_rng_states(tmp_path, monkeypatch):
    """A run on another device (a GPU) still restores: the checkpoint is read on the CPU,
    where torch's RNG setters want their states, and load_state_dict moves the weights."""
    import hpml.train.checkpoint as checkpoint

    work = build_training(RunConfig(**SMALL, steps=1, evaluate=False))
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, work.state)
    loads = []
    real_load = torch.load
    monkeypatch.setattr(checkpoint.torch, "load", lambda *a, **kw: loads.append(kw.get("map_location")) or real_load(*a, **kw))
    restored = []
    monkeypatch.setattr(checkpoint.torch, "set_rng_state", lambda t: restored.append(t.device))
    work.state.device = torch.device("meta")  # the run's device is not the CPU (the module stays here)
    checkpoint.load_checkpoint(path, work.state)
    assert loads == ["cpu"] and restored == [torch.device("cpu")]


def test_saving_a_checkpoint_leaves_cuda_uninitialised_in_a_cpu_run(tmp_path, monkeypatch):
    import hpml.train.checkpoint as checkpoint

    work = build_training(RunConfig(**SMALL, steps=1, evaluate=False))
    touched = []
    # As on a GPU node running a CPU job: CUDA is there, and this process has not initialised it.
    monkeypatch.setattr(checkpoint.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(checkpoint.torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(checkpoint.torch.cuda, "get_rng_state_all", lambda: touched.append(1) or [])
    save_checkpoint(tmp_path / CHECKPOINT_NAME, work.state)
    assert touched == [] and "cuda" not in checkpoint.read_checkpoint(tmp_path / CHECKPOINT_NAME)["rng"]


def test_a_last_batch_of_one_sample_is_dropped_and_said_so():
    """9 = 2 x 4 + 1: a 1-sample batch would reach BatchNorm in training (ValueError)."""
    from hpml.train.run import run, summary_lines

    record = run(RunConfig(**{**SMALL, "batch_size": 4, "train_size": 9}, epochs=1, evaluate=False), progress=False)
    assert record["steps"] == 2 and record["phases"]["train"]["samples"] == 8
    assert record["dropped_per_epoch"] == 1
    assert any(line.startswith("  dropped    the short last batch of each epoch (1 sample):") for line in summary_lines(record))


def test_a_batch_larger_than_the_training_set_is_a_clear_error():
    with pytest.raises(HpmlError, match="--batch-size 8 is more than the 5 training samples"):
        build_training(RunConfig(**{**SMALL, "train_size": 5}, steps=1))


def _step_shapes(monkeypatch) -> list[tuple]:
    import hpml.train.fit as fit_module

    shapes: list[tuple] = []
    real_step = fit_module.train_step
    monkeypatch.setattr(fit_module, "train_step",
                        lambda state, group: shapes.append(tuple(x.shape for x, _ in group)) or real_step(state, group))
    return shapes


@pytest.mark.parametrize("opts", [(), ("device_loader",)])
def test_every_training_step_has_the_first_steps_input_shape(monkeypatch, opts):
    """36 = 4 x 8 + 4: a short last batch would change the input shape mid-run, and a
    compiled model recompiles (cuDNN benchmark re-tunes) on it inside the steady state."""
    shapes = _step_shapes(monkeypatch)
    fit(build_training(RunConfig(**{**SMALL, "train_size": 36}, optimizations=opts, epochs=2, evaluate=False)),
        progress=False)
    assert len(shapes) == 8 and set(shapes) == {shapes[0]}


@pytest.mark.slow  # inductor compiles ResNet-18: minutes on 2 shared cores
def test_compile_with_a_short_last_batch_compiles_only_during_warm_up(monkeypatch):
    from torch._dynamo.utils import counters

    import hpml.train.fit as fit_module
    from hpml.train.run import run

    torch._dynamo.reset()
    graphs: list[int] = []  # dynamo's compiled graphs after each step
    real_step = fit_module.train_step
    monkeypatch.setattr(fit_module, "train_step", lambda state, group: (
        real_step(state, group), graphs.append(counters["stats"]["unique_graphs"]))[0])
    record = run(RunConfig(**{**SMALL, "train_size": 36}, optimizations=("compile",), epochs=2, evaluate=False),
                 progress=False)
    warm = record["phases"]["train"]["warmup_steps"]
    assert graphs[0] > 0  # the first step compiled
    # no step after the warm-up compiled anything: the steady samples/s holds no compile
    assert graphs[warm - 1:] == [graphs[warm - 1]] * (len(graphs) - warm + 1), graphs


def test_no_device_sync_between_the_steady_steps(monkeypatch):
    """A loss read-back inside the timed loop syncs the device; fit checks losses after each epoch."""
    import hpml.train.fit as fit_module

    events: list[str] = []
    real_step, real_check, real_sync = fit_module.train_step, fit_module.check_finite, fit_module.synchronize
    monkeypatch.setattr(fit_module, "train_step", lambda *a: events.append("step") or real_step(*a))
    monkeypatch.setattr(fit_module, "check_finite", lambda *a: events.append("sync") or real_check(*a))
    monkeypatch.setattr(fit_module, "synchronize", lambda *a: events.append("sync") or real_sync(*a))
    fit(build_training(RunConfig(**{**SMALL, "batch_size": 2, "train_size": 24}, epochs=1, evaluate=False)),
        progress=False)
    warm_end = [i for i, e in enumerate(events) if e == "sync"][1]  # after the start's and the warm-up's syncs
    assert events[:warm_end].count("step") == fit_module.WARMUP_STEPS
    steady = events[warm_end + 1:]
    assert steady[:10] == ["step"] * 10 and steady.index("sync") == 10  # 12 steps, 10 steady, then syncs
