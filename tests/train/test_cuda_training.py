"""Training on CUDA for real (``gpu``: skipped without CUDA, with the reason): fp16 autocast with
GradScaler, bf16, channels_last and torch.compile, each for a few optimizer steps on a small CNN,
and a checkpoint save/resume round trip on the GPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from hpml.train import OptContext, Settings, compose, make_state, train_step
from hpml.train.checkpoint import load_checkpoint, save_checkpoint
from hpml.train.state import apply_backend_flags

pytestmark = pytest.mark.gpu

STEPS = 10


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def batch(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture(autouse=True)
def default_backend_flags():
    yield
    apply_backend_flags(Settings())  # the optimizations' cuDNN/TF32 flags do not outlive the test


def cuda_state(names: tuple[str, ...]):
    settings = compose(list(names), OptContext("cuda", accum_steps=2, num_workers=2))
    return make_state(small_cnn(), device="cuda", settings=settings, lr=0.05)


def train(state, steps: int = STEPS) -> list[float]:
    x, y = batch()
    return [train_step(state, [(x, y)]).item() for _ in range(steps)]


def check_trains(state) -> list[float]:
    """A few real steps on one batch: the loss is finite and falls, every weight moved, all on the GPU."""
    before = [p.detach().clone() for p in state.module.parameters()]
    losses = train(state)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert min(losses[-3:]) < losses[0], losses
    assert all(p.device.type == "cuda" for p in state.module.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, state.module.parameters()))
    return losses


def logits_dtype(state) -> torch.dtype:
    with torch.no_grad(), state.autocast():
        return state.model(state.move_input(batch()[0])).dtype


def test_fp16_autocast_with_grad_scaler_trains():
    state = cuda_state(("amp",))  # on CUDA amp is fp16 autocast + GradScaler
    assert state.scaler.is_enabled() and logits_dtype(state) == torch.float16
    check_trains(state)
    scale = state.scaler.get_scale()
    assert 0 < scale < float("inf")
    assert state.optimizer.state  # steps were taken, not all skipped as overflows


def test_bf16_autocast_trains():
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16 (pre-Ampere)")
    state = cuda_state(("amp_bf16",))
    assert not state.scaler.is_enabled() and logits_dtype(state) == torch.bfloat16
    check_trains(state)


def test_channels_last_trains_in_nhwc():
    state = cuda_state(("channels_last",))
    check_trains(state)
    conv = state.module[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert state.move_input(batch()[0]).is_contiguous(memory_format=torch.channels_last)


def test_compile_trains_and_matches_eager():
    state = cuda_state(("compile",))
    assert state.model is not state.module  # the compiled wrapper runs
    compiled = check_trains(state)
    eager = train(cuda_state(()))
    assert compiled == pytest.approx(eager, rel=1e-2, abs=1e-3)  # same model, same steps


def test_checkpoint_round_trip_on_the_gpu(tmp_path):
    """Save after a few fp16 steps, load into a fresh state: weights, momentum, scaler and step come
    back exactly, and both go on to train alike."""
    state = cuda_state(("amp", "channels_last"))
    train(state, 4)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, state)
    resumed = cuda_state(("amp", "channels_last"))
    load_checkpoint(path, resumed)
    assert resumed.step == state.step == 4
    assert resumed.scaler.get_scale() == state.scaler.get_scale()
    for a, b in zip(state.module.state_dict().values(), resumed.module.state_dict().values()):
        assert b.device.type == "cuda" and torch.equal(a, b)
    for pa, pb in zip(state.module.parameters(), resumed.module.parameters()):
        buf_a = state.optimizer.state[pa]["momentum_buffer"]
        assert torch.equal(buf_a, resumed.optimizer.state[pb]["momentum_buffer"])
    assert train(resumed, 3) == pytest.approx(train(state, 3), rel=1e-3, abs=1e-4)
