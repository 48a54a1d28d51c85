"""DDP and FSDP2 wrappers of a built TrainState; ``make_state(..., wrap=)`` calls one, then compiles.
``state.module`` stays raw, so checkpoints hold plain keys and load at any world size."""

from __future__ import annotations

import contextlib
import inspect
from functools import partial
from typing import Callable, ContextManager, Iterator

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from hpml.torch_compat import static_graph_recorded
from hpml.train.state import TrainState

Wrapped = tuple[nn.Module, Callable[[], ContextManager]]
Wrapper = Callable[[TrainState], Wrapped]

STRATEGIES = ("ddp", "fsdp")


def ddp_wrap(state: TrainState) -> Wrapped:
    """DDP over ``state.module`` with the knobs in ``state.settings``."""
    s = state.settings
    if s.sync_bn:
        # in place, same Parameter objects: the optimizer built over them stays valid
        state.module = nn.SyncBatchNorm.convert_sync_batchnorm(state.module)
    device_ids = None
    if state.device.type == "cuda":
        device_ids = [state.device.index if state.device.index is not None else torch.cuda.current_device()]
    # No find_unused_parameters (a graph walk per step): create_model freezes what a classifier never uses.
    ddp = DistributedDataParallel(
        state.module,
        device_ids=device_ids,
        bucket_cap_mb=s.ddp_bucket_cap_mb,  # MB of gradients per all-reduce
        gradient_as_bucket_view=s.ddp_gradient_as_bucket_view,
        static_graph=s.ddp_static_graph,
    )
    return ddp, partial(_static_graph_no_sync, ddp) if s.ddp_static_graph else ddp.no_sync


def _static_graph_no_sync(ddp: DistributedDataParallel) -> ContextManager:
    # DDP asserts when the backward that records a static graph runs under no_sync, so the
    # first optimizer step of a gradient-accumulation run all-reduces every micro-step.
    if static_graph_recorded(ddp):
        return ddp.no_sync()
    return contextlib.nullcontext()


def fsdp_wrap(state: TrainState) -> Wrapped:
    """Shard parameters, gradients and optimizer state across the ranks (FSDP2)."""
    from torch.distributed.fsdp import fully_shard

    module = state.module
    for block in repeated_blocks(module):
        fully_shard(block)
    fully_shard(module)
    # fully_shard replaced every parameter by a DTensor: rebuild the optimizer and scheduler over them
    old = state.optimizer
    accepted = inspect.signature(type(old).__init__).parameters
    state.optimizer = type(old)(module.parameters(), **{k: v for k, v in old.defaults.items() if k in accepted})
    state.scheduler = torch.optim.lr_scheduler.LambdaLR(state.optimizer, state.scheduler.lr_lambdas)
    return module, lambda: _fsdp_no_sync(module)


#: The first torch whose GradScaler unscales FSDP2's sharded gradients (pytorch/pytorch#132816).
FSDP_GRAD_SCALER_TORCH = "2.5"


def fsdp_unsupported_reason(settings, version: str = torch.__version__) -> str | None:
    """Why FSDP2 cannot train with ``settings`` on torch ``version`` (None when it can)."""
    from torch.torch_version import TorchVersion

    if settings.strategy != "fsdp" or not settings.grad_scaler or TorchVersion(version) >= FSDP_GRAD_SCALER_TORCH:
        return None
    return (f"--opt fsdp with fp16 loss scaling (GradScaler) needs torch >= {FSDP_GRAD_SCALER_TORCH} to unscale "
            f"sharded gradients; this is torch {version}: upgrade torch, or use amp_bf16 (no scaler)")


def repeated_blocks(module: nn.Module) -> list[nn.Module]:
    """The outermost parameter-holding members of ``ModuleList``/``Sequential`` containers (ResNet's blocks,
    XLNet's layers): each one all-gather unit, so one block's full parameters are resident at a time."""
    blocks: list[nn.Module] = []

    def visit(parent: nn.Module) -> None:
        repeated = isinstance(parent, (nn.ModuleList, nn.Sequential))
        for child in parent.children():
            if repeated and any(True for _ in child.parameters()):
                blocks.append(child)  # a block: its insides go with it
            else:
                visit(child)

    visit(module)
    return blocks


@contextlib.contextmanager
def _fsdp_no_sync(module: nn.Module) -> Iterator[None]:
    # FSDP2's counterpart of DDP.no_sync: keep unsharded gradients, skip the reduce-scatter.
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def make_wrapper(strategy: str = "ddp") -> Wrapper:
    """The wrap hook for ``build_training(..., wrap_model=)``: ``ddp`` or ``fsdp``."""
    from hpml.errors import HpmlError

    if strategy not in STRATEGIES:
        raise HpmlError(f"unknown distributed strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    return fsdp_wrap if strategy == "fsdp" else ddp_wrap
