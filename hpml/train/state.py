"""Explicit training state, decided once from a run's settings: autocast, scaler, input mover, DDP ``no_sync``.
Features that are off become objects that do nothing, so the step has no branches."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, ContextManager

import torch
import torch.nn as nn

from hpml.train.malloc import tune_host_allocator
from hpml.train.optimizations import Settings

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


@dataclass
class TrainState:
    """A model being trained and everything that changes with it."""

    module: nn.Module  # the raw model: what checkpoints hold
    model: nn.Module  # what runs: the module, compiled and/or DDP-wrapped
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: nn.Module
    device: torch.device
    settings: Settings
    autocast: Callable[[], ContextManager]
    move_input: Callable[[torch.Tensor], torch.Tensor]
    move_target: Callable[[torch.Tensor], torch.Tensor]
    no_sync: Callable[[], ContextManager] = contextlib.nullcontext
    step: int = 0  # optimizer steps taken
    epoch: int = 0  # epochs completed


def apply_backend_flags(settings: Settings) -> None:
    """Set the process-wide backend flags ``settings`` want, both ways (the harness re-applies them before each
    side's calls). torch enables cuDNN TF32 by default; the fp32 baseline turns it off so ``tf32`` is measurable."""
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.backends.cudnn.deterministic = False  # torch's default, whatever ran before
    torch.backends.cudnn.allow_tf32 = settings.tf32
    torch.set_float32_matmul_precision("high" if settings.tf32 else "highest")


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Multiplier of the base LR at step ``step``: linear warm-up, then constant, cosine to 0, or linear to 0 (``onecycle``)."""
    total = max(total_steps, 1)
    warm = min(max(warmup_steps, 0), total)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "onecycle":
            return 1.0 - progress
        return 1.0

    return factor


def make_optimizer(
    params, name: str, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0, fused: bool = False,
    foreach: bool = False,
) -> torch.optim.Optimizer:
    cls = _OPTIMIZERS[name]
    kwargs: dict = dict(lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        kwargs.update(momentum=momentum, nesterov=momentum > 0)
    if fused and foreach:
        raise ValueError("fused and foreach optimizers are exclusive")
    if fused:
        kwargs["fused"] = True
    if foreach:
        kwargs["foreach"] = True
    return cls(params, **kwargs)


def make_state(
    module: nn.Module,
    *,
    device: str | torch.device,
    settings: Settings = Settings(),
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.0,
    schedule: str = "constant",
    total_steps: int = 1,
    warmup_steps: int = 0,
    image_inputs: bool = True,
    wrap: Callable[[TrainState], tuple[nn.Module, Callable[[], ContextManager]]] | None = None,
) -> TrainState:
    """Build the state for ``module`` under ``settings``; ``wrap`` (DDP/FSDP) gives ``(model, no_sync)``."""
    device = torch.device(device)
    apply_backend_flags(settings)
    if settings.host_allocator:
        tune_host_allocator()  # one-way, so not a backend flag: its rows run in fresh processes
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    module = module.to(device=device, memory_format=memory_format)
    opt = make_optimizer(
        module.parameters(), optimizer, lr,
        momentum=momentum, weight_decay=weight_decay, fused=settings.fused_optimizer,
        foreach=settings.foreach_optimizer,
    )
    if settings.autocast_dtype is None:
        autocast: Callable[[], ContextManager] = contextlib.nullcontext
    else:
        autocast = partial(torch.autocast, device_type=device.type, dtype=settings.autocast_dtype)
    # Token ids are 2-D: a memory format only applies to 4-D image batches.
    input_format = memory_format if image_inputs else torch.preserve_format
    state = TrainState(
        module=module,
        model=module,
        optimizer=opt,
        scaler=torch.amp.GradScaler(device.type, enabled=settings.grad_scaler),
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(schedule, total_steps, warmup_steps)),
        criterion=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
        device=device,
        settings=settings,
        autocast=autocast,
        move_input=partial(_move, device=device, non_blocking=settings.pin_memory, memory_format=input_format),
        move_target=partial(_move, device=device, non_blocking=settings.pin_memory, memory_format=torch.preserve_format),
    )
    if wrap is not None:
        state.model, state.no_sync = wrap(state)
    if settings.compile:  # after the wrap: compiling first would hide the gradient hooks from DDP's reducer
        state.model = torch.compile(state.model)
    return state


def _move(t: torch.Tensor, *, device: torch.device, non_blocking: bool, memory_format: torch.memory_format) -> torch.Tensor:
    # non_blocking only overlaps the copy with compute when the source is pinned.
    return t.to(device=device, non_blocking=non_blocking, memory_format=memory_format)
