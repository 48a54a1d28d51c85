"""Every optimization does what it says: one effect check per registered optimization.

Each check builds what ``hpml train`` builds for the optimization (state, loader, DDP
wrapper) and asserts the effect itself: the logits' dtype under autocast, the
optimizer's ``fused``/``foreach`` flags, the memory format of weights and inputs, the
number of all-reduces, the loader's worker processes, the backend flags.  The checks are
parametrized from the registry, so a new optimization without a check fails here, and
``test_a_check_fails_when_its_optimization_is_a_no_op`` turns each optimization into a
no-op and asserts that its check then fails.

CUDA-only optimizations are composed for ``cuda`` and their host-visible effect checked
on the CPU (backend flags, loader options, the scaler); what needs a GPU (pinned batches,
fp16 logits on the device) is in the ``gpu`` tests at the end.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, get_worker_info

from hpml.data.loader import DeviceLoader
from hpml.distributed.wrap import make_wrapper
from hpml.train import OPTIMIZATIONS, OptContext, Settings, compose, expand, make_state, train_step
from hpml.train.build import build_loader
from hpml.train.fit import micro_groups
from hpml.train.state import TrainState

CTX = dict(accum_steps=2, num_workers=2)


def device_for(name: str) -> str:
    """Where the optimization is composed: CPU when it applies there, else CUDA."""
    opt = OPTIMIZATIONS.get(name)
    return "cpu" if opt.composite or "cpu" in opt.devices else "cuda"


def settings_of(name: str) -> Settings:
    return compose([name], OptContext(device_for(name), **CTX))


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4),
    )


def cpu_state(settings: Settings) -> TrainState:
    """The state ``settings`` make, on the CPU (CUDA-only settings included)."""
    return make_state(small_cnn(), device="cpu", settings=settings, lr=0.1)


def batch(n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


class WorkerTagged(Dataset):
    """Each sample says whether a loader worker process produced it."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((3, 8, 8), float(get_worker_info() is not None)), 0


def loader_of(settings: Settings, dataset: Dataset | None = None):
    cfg = SimpleNamespace(batch_size=4, device="cpu", seed=0)
    return build_loader(dataset if dataset is not None else WorkerTagged(), cfg, settings, train=True)


class world_of_one:
    """A one-rank gloo process group (in this process), for DDP/FSDP wrappers."""

    def __enter__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        dist.init_process_group("gloo", init_method=f"file://{Path(self._dir.name) / 'rdzv'}", rank=0, world_size=1)

    def __exit__(self, *exc) -> None:
        dist.destroy_process_group()
        self._dir.cleanup()


def all_reduces_per_4_batches(settings: Settings) -> int:
    """All-reduces DDP issues while ``train_step`` runs 4 batches grouped as ``fit`` groups them."""
    with world_of_one():
        state = cpu_state(settings)
        state.model, state.no_sync = make_wrapper("ddp")(state)
        calls = []

        def counting_hook(_, bucket):
            calls.append(bucket.index())
            fut = torch.futures.Future()
            fut.set_result(bucket.buffer())
            return fut

        state.model.register_comm_hook(None, counting_hook)
        for group in micro_groups([batch(seed=k) for k in range(4)], settings.accum_steps):
            train_step(state, group)
        return len(calls)


# --- the checks: each asserts the optimization's effect ----------------------------------


def check_logits(dtype: torch.dtype) -> Callable[[Settings], None]:
    def check(settings: Settings) -> None:
        state = cpu_state(settings)
        with state.autocast():
            logits = state.model(state.move_input(batch()[0]))
        assert logits.dtype == dtype, f"logits are {logits.dtype} under the run's autocast, expected {dtype}"
    return check


def check_fp16(settings: Settings) -> None:
    check_logits(torch.float16)(settings)
    assert cpu_state(settings).scaler.is_enabled(), "fp16 without loss scaling"


def check_amp(settings: Settings) -> None:  # composed for CPU: bf16, no scaler
    check_logits(torch.bfloat16)(settings)
    cuda = compose(["amp"], OptContext("cuda", **CTX))
    check_fp16(cuda)


def check_channels_last(settings: Settings) -> None:
    state = cpu_state(settings)
    weight = state.module[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous(), \
        "conv weights are not NHWC"
    x = state.move_input(batch()[0])
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(), "inputs are not NHWC"


def check_compile(settings: Settings) -> None:
    state = cpu_state(settings)
    assert isinstance(state.model, torch._dynamo.eval_frame.OptimizedModule), "model is not compiled"
    assert state.model._orig_mod is state.module


def check_grad_accum(settings: Settings) -> None:
    assert settings.accum_steps == CTX["accum_steps"]
    # 4 batches: one all-reduce per optimizer step, none on the no_sync micro-steps
    assert all_reduces_per_4_batches(settings) == 4 // CTX["accum_steps"]


def check_pin_memory(settings: Settings) -> None:
    loader = loader_of(settings)
    assert loader.pin_memory, "the loader does not pin its batches"
    assert cpu_state(settings).move_input.keywords["non_blocking"], "host-to-device copies block"


def check_workers(settings: Settings) -> None:
    loader = loader_of(settings)
    assert (loader.num_workers, loader.persistent_workers) == (CTX["num_workers"], True)
    x, _ = next(iter(loader))
    assert bool((x == 1).all()), "batches were not produced by worker processes"


def check_optimizer_flag(flag: str) -> Callable[[Settings], None]:
    def check(settings: Settings) -> None:
        state = cpu_state(settings)
        assert state.optimizer.defaults[flag] is True, f"optimizer.defaults[{flag!r}] = {state.optimizer.defaults[flag]}"
        other = {"fused": "foreach", "foreach": "fused"}[flag]
        assert not state.optimizer.defaults[other]
        train_step(state, [batch()])  # the implementation runs on this device
    return check


def check_cudnn_benchmark(settings: Settings) -> None:
    cpu_state(settings)
    try:
        assert torch.backends.cudnn.benchmark, "cudnn.benchmark is off"
    finally:
        cpu_state(Settings())  # the process-wide flags back to the baseline's


def check_tf32(settings: Settings) -> None:
    cpu_state(settings)
    try:
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32, "TF32 is off"
    finally:
        cpu_state(Settings())


def check_host_allocator(settings: Settings, fake_allocator) -> None:
    from hpml.train.malloc import TUNING

    cpu_state(settings)
    assert sorted(fake_allocator.calls) == sorted(TUNING.items()), "mallopt was not called with the tuning"


def check_device_loader(settings: Settings) -> None:
    from hpml.data import create_dataset

    loader = loader_of(settings, create_dataset("cifar10", "train", size=8, image_size=8))
    assert isinstance(loader, DeviceLoader), f"loader is a {type(loader).__name__}, not device-resident"


def check_ddp(attribute: str, expected) -> Callable[[Settings], None]:
    def check(settings: Settings) -> None:
        with world_of_one():
            state = cpu_state(settings)
            ddp, _ = make_wrapper("ddp")(state)
            assert getattr(ddp, attribute) == expected, f"DDP {attribute} = {getattr(ddp, attribute)}"
    return check


def check_sync_bn(settings: Settings) -> None:
    with world_of_one():
        state = cpu_state(settings)
        try:
            make_wrapper("ddp")(state)
        except ValueError as err:  # DDP on CPU refuses SyncBatchNorm, after the conversion
            assert "GPU" in str(err), err
        assert any(isinstance(m, nn.SyncBatchNorm) for m in state.module.modules()), "no SyncBatchNorm"


def check_fsdp(settings: Settings) -> None:
    from torch.distributed.tensor import DTensor

    assert settings.strategy == "fsdp"
    with world_of_one():
        state = cpu_state(settings)
        make_wrapper(settings.strategy)(state)
        assert all(isinstance(p, DTensor) for p in state.module.parameters()), "parameters are not sharded"


def check_baseline(settings: Settings) -> None:
    state = cpu_state(settings)
    with state.autocast():
        assert state.model(batch()[0]).dtype == torch.float32
    assert not state.optimizer.defaults.get("fused") and not state.optimizer.defaults.get("foreach")
    assert state.model is state.module and not state.scaler.is_enabled()


CHECKS: dict[str, Callable] = {
    "baseline": check_baseline,
    "amp": check_amp,
    "amp_bf16": check_logits(torch.bfloat16),
    "amp_fp16": check_fp16,
    "channels_last": check_channels_last,
    "compile": check_compile,
    "grad_accum": check_grad_accum,
    "pin_memory": check_pin_memory,
    "workers": check_workers,
    "fused_optimizer": check_optimizer_flag("fused"),
    "foreach_optimizer": check_optimizer_flag("foreach"),
    "cudnn_benchmark": check_cudnn_benchmark,
    "tf32": check_tf32,
    "host_allocator": check_host_allocator,
    "device_loader": check_device_loader,
    "ddp_bucket_50mb": check_ddp("bucket_bytes_cap", 50 * 2**20),
    "ddp_grad_as_bucket_view": check_ddp("gradient_as_bucket_view", True),
    "ddp_static_graph": check_ddp("static_graph", True),
    "sync_bn": check_sync_bn,
    "fsdp": check_fsdp,
}


def run_check(name: str, settings: Settings, fake_allocator) -> None:
    opt = OPTIMIZATIONS.get(name)
    if opt.composite:  # every member's effect, on the composed settings
        members = expand([name], "cpu")
        assert members, f"{name} expands to nothing"
        for member in members:
            run_check(member, settings, fake_allocator)
        return
    assert name in CHECKS, f"no effect check for optimization {name!r}: add one to CHECKS"
    check = CHECKS[name]
    if check is check_host_allocator:
        check(settings, fake_allocator)
    else:
        check(settings)


@pytest.mark.parametrize("name", OPTIMIZATIONS.names())
def test_each_optimization_has_its_effect(name, fake_allocator):
    run_check(name, settings_of(name), fake_allocator)


def _no_op(name: str):
    opt = OPTIMIZATIONS.get(name)
    if opt.composite:
        return dataclasses.replace(opt, composite={device: () for device in opt.composite})
    return dataclasses.replace(opt, apply=lambda s, ctx: s)


@pytest.mark.parametrize("name", [n for n in OPTIMIZATIONS.names() if n != "baseline"])
def test_a_check_fails_when_its_optimization_is_a_no_op(name, monkeypatch, fake_allocator):
    monkeypatch.setitem(OPTIMIZATIONS._entries, name, _no_op(name))
    with pytest.raises(AssertionError):
        run_check(name, settings_of(name), fake_allocator)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_wrapped_model_is_compiled_once_after_the_wrap(monkeypatch, strategy):
    compiled: list[nn.Module] = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiled.append(model) or model)
    with world_of_one():
        state = make_state(small_cnn(), device="cpu", lr=0.1, settings=Settings(compile=True),
                           wrap=make_wrapper(strategy))
    assert compiled == [state.model]  # one call, on what the wrap returned
    assert isinstance(state.model, DistributedDataParallel) == (strategy == "ddp")


# --- effects only a GPU shows --------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_pin_memory_batches_are_pinned_on_cuda():
    x, _ = next(iter(loader_of(compose(["pin_memory"], OptContext("cuda", **CTX)))))
    assert x.is_pinned()


@pytest.mark.gpu
@needs_cuda
def test_amp_runs_fp16_on_the_gpu_and_cudnn_benchmark_is_set():
    settings = compose(["amp", "cudnn_benchmark"], OptContext("cuda", **CTX))
    state = make_state(small_cnn(), device="cuda", settings=settings, lr=0.1)
    try:
        assert torch.backends.cudnn.benchmark
        with state.autocast():
            assert state.model(state.move_input(batch()[0])).dtype == torch.float16
        assert state.scaler.is_enabled()
    finally:
        make_state(small_cnn(), device="cuda", settings=Settings(), lr=0.1)
