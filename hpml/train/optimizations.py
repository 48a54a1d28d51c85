"""The optimization catalogue: named, composable pieces, each a function ``Settings -> Settings``.

A run folds them over :class:`Settings` once; the step reads objects that do nothing when a feature is off,
so an optimization that is off adds no branch. The benchmark matrix is generated from :data:`OPTIMIZATIONS`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

from hpml.errors import HpmlError
from hpml.registry import Registry
from hpml.train import malloc


@dataclass(frozen=True)
class Settings:
    """The composed effect of a run's optimizations (defaults = plain eager fp32)."""

    autocast_dtype: torch.dtype | None = None  # None: no autocast
    grad_scaler: bool = False  # fp16 loss scaling
    channels_last: bool = False
    compile: bool = False
    accum_steps: int = 1  # micro-batches per optimizer step
    num_workers: int = 0
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    pin_memory: bool = False
    device_loader: bool = False
    fused_optimizer: bool = False
    foreach_optimizer: bool = False
    cudnn_benchmark: bool = False
    tf32: bool = False
    host_allocator: bool = False
    # DDP tuning knobs (used only by distributed runs)
    ddp_bucket_cap_mb: float = 25.0  # torch's default
    ddp_gradient_as_bucket_view: bool = False
    ddp_static_graph: bool = False
    sync_bn: bool = False
    strategy: str = "ddp"  # distributed wrapper: "ddp" (replicated) or "fsdp" (sharded)


Apply = Callable[[Settings, "OptContext"], Settings]


@dataclass(frozen=True)
class OptContext:
    """What an optimization may look at when applied."""

    device: str
    accum_steps: int = 4
    num_workers: int = 2


@dataclass(frozen=True)
class Optimization:
    name: str
    description: str
    apply: Apply
    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    excludes: tuple[str, ...] = ()  # optimizations that cannot be combined with this one
    requires: Callable[[str], str | None] = lambda device: None  # -> reason it can't run, or None
    composite: dict[str, tuple[str, ...]] | None = None  # device -> member optimizations
    distributed_only: bool = False
    # what it changes (AFFECTS: step, eval forward, loader, the process for good); the benchmark
    # phases that measure it follow from this (hpml.bench.matrix)
    affects: frozenset[str] = frozenset({"step"})
    # -> why it runs but does not pay on this machine (a composite then leaves it out), or None
    pays: Callable[[str], str | None] = lambda device: None

    def __post_init__(self) -> None:
        unknown = set(self.affects) - set(AFFECTS)
        if unknown:
            raise HpmlError(f"optimization {self.name}: affects {sorted(unknown)}; choose from {', '.join(AFFECTS)}")

    @property
    def process_wide(self) -> bool:
        """Changes process state that cannot be undone in-process (measured in fresh processes)."""
        return "process" in self.affects

    def unavailable_reason(self, device: str) -> str | None:
        """Why this optimization does not apply on ``device`` (None when it does)."""
        if device not in self.devices:
            return f"{self.name} applies only to {'/'.join(sorted(self.devices))}, not {device}"
        return self.requires(device)


OPTIMIZATIONS: Registry[Optimization] = Registry("optimization")
AFFECTS = ("step", "forward", "loader", "process")


def register(name: str, description: str, *, devices: tuple[str, ...] = ("cpu", "cuda"),
             affects: tuple[str, ...] = ("step",), **kw) -> Callable[[Apply], Apply]:
    def add(apply: Apply) -> Apply:
        OPTIMIZATIONS.add(name, Optimization(name, description, apply, frozenset(devices),
                                             affects=frozenset(affects), **kw))
        return apply

    return add


def _set(**changes) -> Apply:
    return lambda s, ctx: dataclasses.replace(s, **changes)


def _bf16_pays(device: str) -> str | None:
    """bf16 autocast pays only where bf16 is native: without AVX512-BF16/AMX torch emulates it, many times slower."""
    from hpml.machine import cpu_has_bf16

    if device == "cpu" and not cpu_has_bf16():
        return "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 autocast is emulated, a slowdown"
    return None


def _bf16_reason(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        return "bf16 autocast needs a GPU with bfloat16 support (Ampere or newer)"
    return None


# --- the catalogue -------------------------------------------------------------------

register("baseline", "plain eager fp32: the reference every speedup is measured against", affects=())(
    lambda s, ctx: s
)


@register("amp", "mixed precision: fp16 autocast + GradScaler on CUDA, bf16 autocast on CPU",
          excludes=("amp_bf16", "amp_fp16"), affects=("step", "forward"))
def _amp(s: Settings, ctx: OptContext) -> Settings:
    if ctx.device == "cuda":
        return dataclasses.replace(s, autocast_dtype=torch.float16, grad_scaler=True)
    return dataclasses.replace(s, autocast_dtype=torch.bfloat16)


register("amp_bf16", "bf16 autocast (no loss scaling needed: bf16 has fp32's exponent range)",
         excludes=("amp", "amp_fp16"), requires=_bf16_reason, pays=_bf16_pays, affects=("step", "forward"))(_set(autocast_dtype=torch.bfloat16))
register("amp_fp16", "fp16 autocast + GradScaler (CUDA only: CPU fp16 autocast is not a speedup path)",
         devices=("cuda",), excludes=("amp", "amp_bf16"), affects=("step", "forward"))(_set(autocast_dtype=torch.float16, grad_scaler=True))
register("channels_last", "NHWC memory format for model and image inputs (faster convolutions)",
         affects=("step", "forward"))(
    _set(channels_last=True)
)
register("compile", "torch.compile the model (compilation is warm-up, kept out of measurements)",
         affects=("step", "forward"))(
    _set(compile=True)
)
register("grad_accum", "N micro-batches per optimizer step; DDP all-reduce only on the last")(
    lambda s, ctx: dataclasses.replace(s, accum_steps=ctx.accum_steps)
)
register("pin_memory", "page-locked host batches copied with non_blocking=True",
         devices=("cuda",), excludes=("device_loader",), affects=("loader",))(_set(pin_memory=True))
register("workers", "loader worker processes, persistent across epochs, prefetch 2 batches each",
         excludes=("device_loader",), affects=("loader",))(
    lambda s, ctx: dataclasses.replace(
        s, num_workers=ctx.num_workers, persistent_workers=True, prefetch_factor=2
    )
)
# Without fused/foreach torch picks foreach when every parameter is on CUDA, else the single-tensor
# for-loop: the CPU baseline is the for-loop, the CUDA baseline already foreach.
register("fused_optimizer",
         "optimizer(fused=True): one fused kernel updates all parameters (the baseline is torch's "
         "default: the single-tensor for-loop on CPU, foreach on CUDA)",
         excludes=("foreach_optimizer",))(_set(fused_optimizer=True))
register("foreach_optimizer",
         "optimizer(foreach=True): multi-tensor (foreach) ops over all parameters instead of the "
         "per-parameter for-loop (the CPU baseline; on CUDA torch's default is already foreach)",
         excludes=("fused_optimizer",))(_set(foreach_optimizer=True))
register("cudnn_benchmark", "cuDNN autotuning of convolution algorithms", devices=("cuda",),
         affects=("step", "forward"))(
    _set(cudnn_benchmark=True)
)
register("tf32", "TF32 tensor-core matmuls/convolutions for fp32 work", devices=("cuda",),
         affects=("step", "forward"))(
    _set(tf32=True)
)
register("host_allocator",
         "glibc malloc keeps freed memory for reuse (no page faults re-touching activations each step)",
         devices=("cpu",), requires=lambda device: malloc.unavailable_reason(),
         affects=("step", "forward", "process"))(
    _set(host_allocator=True)
)
register("device_loader", "whole dataset resident on the device, augmented there per batch",
         excludes=("workers", "pin_memory"), affects=("loader",))(_set(device_loader=True))
register("ddp_bucket_50mb", "DDP gradient buckets of 50 MB instead of 25 MB (fewer all-reduces)",
         distributed_only=True)(_set(ddp_bucket_cap_mb=50.0))
register("ddp_grad_as_bucket_view", "DDP gradients as views into the all-reduce buckets (saves a copy)",
         distributed_only=True)(_set(ddp_gradient_as_bucket_view=True))
register("ddp_static_graph", "DDP static graph (lets DDP skip per-step unused-parameter bookkeeping)",
         distributed_only=True)(_set(ddp_static_graph=True))
# SyncBatchNorm's all-reduce has no CPU (gloo) kernel in torch: CUDA only.
register("sync_bn", "SyncBatchNorm: BatchNorm statistics over all ranks' samples, not per rank",
         devices=("cuda",), distributed_only=True, excludes=("fsdp",))(_set(sync_bn=True))
register("fsdp", "FSDP (fully_shard): parameters, gradients and optimizer state sharded across ranks",
         distributed_only=True,
         excludes=("sync_bn", "ddp_bucket_50mb", "ddp_grad_as_bucket_view", "ddp_static_graph"))(
    _set(strategy="fsdp")
)

#: The best combination per device, measured (CPU: docs/studies/reference-run.md): fused_optimizer
#: did not pay beyond the sessions' spread, and worker processes compete with the compute for the cores.
OPTIMIZED: dict[str, tuple[str, ...]] = {
    "cpu": ("amp_bf16", "channels_last", "host_allocator"),
    "cuda": ("amp", "channels_last", "cudnn_benchmark", "tf32", "fused_optimizer", "pin_memory", "workers"),
}
OPTIMIZATIONS.add(
    "optimized",
    Optimization(
        "optimized",
        "the best measured combination for the device: " + "; ".join(f"{d}: {'+'.join(v)}" for d, v in OPTIMIZED.items()),
        lambda s, ctx: s,
        composite=OPTIMIZED,
        affects=frozenset(a for members in OPTIMIZED.values() for m in members for a in OPTIMIZATIONS.get(m).affects),
    ),
)


# --- composition ---------------------------------------------------------------------

def list_optimizations() -> list[str]:
    return OPTIMIZATIONS.names()


def expand(names: tuple[str, ...] | list[str], device: str) -> tuple[str, ...]:
    """Replace composites (``optimized``) by their members for ``device``, leaving out those this machine cannot
    run or that do not pay here; drop ``baseline``. A member named on its own is kept, so validation says why."""
    out: list[str] = []
    for name in names:
        opt = OPTIMIZATIONS.get(name)
        if opt.composite:
            members = tuple(m for m in opt.composite[device]
                            if OPTIMIZATIONS.get(m).requires(device) is None and OPTIMIZATIONS.get(m).pays(device) is None)
        else:
            members = (name,)
        out.extend(m for m in members if m != "baseline" and m not in out)
    return tuple(out)


def is_process_wide(names: tuple[str, ...] | list[str], device: str) -> bool:
    """Whether any of ``names`` changes process-wide state for good (rows without it must run first)."""
    return "process" in affects(names, device)


def affects(names: tuple[str, ...] | list[str], device: str) -> frozenset[str]:
    """What ``names`` change on ``device`` (composites: their members there; baseline: nothing)."""
    return frozenset(a for name in expand(names, device) for a in OPTIMIZATIONS.get(name).affects)


def check_single_process(names: tuple[str, ...] | list[str], device: str) -> None:
    """HpmlError when a single-process run gets a distributed-only optimization (it would do nothing)."""
    dist = [n for n in expand(names, device) if OPTIMIZATIONS.get(n).distributed_only]
    if dist:
        raise HpmlError(f"{', '.join(dist)} only applies to distributed runs: add --nproc N (N > 1) "
                        "or launch with torchrun")


def validate_optimizations(names: tuple[str, ...] | list[str], device: str) -> None:
    """Raise HpmlError for unknown names, wrong devices and conflicting pairs."""
    for name in names:
        if name not in OPTIMIZATIONS:
            raise HpmlError(f"unknown optimization {name!r}; registered: {', '.join(OPTIMIZATIONS)}")
    expanded = expand(names, device)
    for name in expanded:
        reason = OPTIMIZATIONS.get(name).unavailable_reason(device)
        if reason:
            raise HpmlError(reason)
    for name in expanded:
        clash = [other for other in OPTIMIZATIONS.get(name).excludes if other in expanded]
        if clash:
            raise HpmlError(f"optimization {name!r} cannot be combined with {', '.join(clash)}")


def compose(names: tuple[str, ...] | list[str], ctx: OptContext) -> Settings:
    """Fold the (validated) optimizations over the default settings."""
    validate_optimizations(names, ctx.device)
    settings = Settings()
    for name in expand(names, ctx.device):
        settings = OPTIMIZATIONS.get(name).apply(settings, ctx)
    return settings
