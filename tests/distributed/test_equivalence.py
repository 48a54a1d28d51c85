"""DDP (and FSDP) on 2 CPU ranks computes what one process computes on their union.

One spawn (the expensive part: two fresh interpreters importing torch) trains every
variant; the tests compare its results with single-process runs of hpml's own
``make_state`` / ``train_step``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from hpml.distributed import spawn
from hpml.train import Settings, make_state, train_step

pytestmark = pytest.mark.ddp

WORLD = 2
PER_RANK = 4  # samples per rank per micro-batch
STEPS = 3
ACCUM = 3
TOL = dict(rtol=1e-5, atol=1e-5)  # all-reduce sums in another order than one big batch


def tiny_cnn(num_classes: int = 4) -> nn.Module:
    """No batch norm: per-rank statistics would make DDP differ from one big batch."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes)
    )


def global_batches(n: int, size: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, 4, (size,), generator=g)) for _ in range(n)]


def shard(batch, rank: int):
    x, y = batch
    return x[rank * PER_RANK:(rank + 1) * PER_RANK], y[rank * PER_RANK:(rank + 1) * PER_RANK]


def new_state(accum: int = 1):
    return make_state(tiny_cnn(), device="cpu", settings=Settings(accum_steps=accum), lr=0.1)


def params(module: nn.Module) -> list[torch.Tensor]:
    # FSDP parameters are sharded DTensors: full_tensor() gathers them (a collective).
    return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for p in module.parameters()]


def counting_allreduce(calls: list, bucket):
    """DDP comm hook: count the bucket all-reduces, then do the default one."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    calls.append(1)
    return allreduce_hook(None, bucket)


def _train_variants(env) -> dict:
    """Runs on each rank: the same training as the single-process references, on its shard."""
    from hpml.distributed.wrap import ddp_wrap, fsdp_wrap

    out: dict = {}
    plain = global_batches(STEPS, WORLD * PER_RANK, seed=0)
    state = new_state()
    state.model, state.no_sync = ddp_wrap(state)
    for batch in plain:
        train_step(state, [shard(batch, env.rank)])
    out["ddp"] = params(state.module)

    micro = global_batches(STEPS * ACCUM, WORLD * PER_RANK, seed=1)
    state = new_state(ACCUM)
    state.model, state.no_sync = ddp_wrap(state)
    calls: list = []
    state.model.register_comm_hook(calls, counting_allreduce)
    for i in range(STEPS):
        train_step(state, [shard(b, env.rank) for b in micro[i * ACCUM:(i + 1) * ACCUM]])
    out["accum"] = params(state.module)
    out["allreduce_calls"] = len(calls)

    # DDP's knobs from the catalogue change how gradients travel, not their values.
    state = make_state(tiny_cnn(), device="cpu", lr=0.1, settings=Settings(
        accum_steps=ACCUM, ddp_static_graph=True, ddp_gradient_as_bucket_view=True, ddp_bucket_cap_mb=50.0))
    state.model, state.no_sync = ddp_wrap(state)
    for i in range(STEPS):
        train_step(state, [shard(b, env.rank) for b in micro[i * ACCUM:(i + 1) * ACCUM]])
    out["accum_knobs"] = params(state.module)

    state = new_state()
    state.model, state.no_sync = fsdp_wrap(state)
    for batch in plain:
        train_step(state, [shard(batch, env.rank)])
    out["fsdp_sharded"] = all(hasattr(p, "full_tensor") for p in state.module.parameters())
    out["fsdp"] = params(state.module)
    return out


def _train_compiled(env) -> list[torch.Tensor]:
    """DDP first, then torch.compile (the supported order), with accumulation."""
    from hpml.distributed.wrap import ddp_wrap

    micro = global_batches(STEPS * ACCUM, WORLD * PER_RANK, seed=1)
    state = make_state(tiny_cnn(), device="cpu", lr=0.1, settings=Settings(accum_steps=ACCUM, compile=True),
                       wrap=ddp_wrap)
    for i in range(STEPS):
        train_step(state, [shard(b, env.rank) for b in micro[i * ACCUM:(i + 1) * ACCUM]])
    assert not isinstance(state.module, torch.nn.parallel.DistributedDataParallel)  # raw, for checkpoints
    return params(state.module)


@pytest.fixture(scope="module")
def ranks() -> list[dict]:
    return spawn(_train_variants, WORLD, device="cpu", timeout=30, threads=1)


def single_process(groups, accum: int = 1) -> list[torch.Tensor]:
    state = new_state(accum)
    for group in groups:
        train_step(state, group)
    return params(state.module)


def test_ddp_two_ranks_equal_one_process_with_twice_the_batch(ranks):
    reference = single_process([[b] for b in global_batches(STEPS, WORLD * PER_RANK, seed=0)])
    for rank in ranks:
        for got, want in zip(rank["ddp"], reference):
            torch.testing.assert_close(got, want, **TOL)


def test_grad_accumulation_under_ddp_equals_accumulation_without(ranks):
    micro = global_batches(STEPS * ACCUM, WORLD * PER_RANK, seed=1)
    reference = single_process([micro[i * ACCUM:(i + 1) * ACCUM] for i in range(STEPS)], accum=ACCUM)
    for rank in ranks:
        for got, want in zip(rank["accum"], reference):
            torch.testing.assert_close(got, want, **TOL)


def test_ddp_knobs_static_graph_bucket_view_50mb_keep_the_result(ranks):
    micro = global_batches(STEPS * ACCUM, WORLD * PER_RANK, seed=1)
    reference = single_process([micro[i * ACCUM:(i + 1) * ACCUM] for i in range(STEPS)], accum=ACCUM)
    for rank in ranks:
        for got, want in zip(rank["accum_knobs"], reference):
            torch.testing.assert_close(got, want, **TOL)


def test_grad_accumulation_all_reduces_only_on_the_last_micro_step(ranks):
    # The model (< 1 MB of gradients) fits DDP's first bucket: one all-reduce per sync.
    # Without no_sync it would be STEPS * ACCUM.
    assert [r["allreduce_calls"] for r in ranks] == [STEPS] * WORLD


def test_fsdp_two_ranks_equal_one_process_with_twice_the_batch(ranks):
    reference = single_process([[b] for b in global_batches(STEPS, WORLD * PER_RANK, seed=0)])
    assert ranks[0]["fsdp_sharded"]
    for rank in ranks:
        for got, want in zip(rank["fsdp"], reference):
            torch.testing.assert_close(got, want, **TOL)


@pytest.mark.slow  # inductor compiles the model in each rank: minutes on 2 shared cores
def test_ddp_then_compile_equals_one_process():
    ranks = spawn(_train_compiled, WORLD, device="cpu", timeout=300, threads=1)
    micro = global_batches(STEPS * ACCUM, WORLD * PER_RANK, seed=1)
    reference = single_process([micro[i * ACCUM:(i + 1) * ACCUM] for i in range(STEPS)], accum=ACCUM)
    for rank in ranks:
        for got, want in zip(rank, reference):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
