"""Correctness of the training step under the optimizations (CPU, small models)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from hpml.models import create_model
from hpml.train import OptContext, Settings, compose, evaluate, make_state, train_step


def tiny_cnn(num_classes: int = 4) -> nn.Module:
    """No batch norm: gradients of one big batch equal those of its micro-batches."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes)
    )


def batches(n: int, size: int, seed: int = 0, num_classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, num_classes, (size,), generator=g))
        for _ in range(n)
    ]


def params_after(settings: Settings, groups, **kw) -> list[torch.Tensor]:
    state = make_state(tiny_cnn(), device="cpu", settings=settings, lr=0.1, weight_decay=0.0, **kw)
    for group in groups:
        train_step(state, group)
    return [p.detach().clone() for p in state.module.parameters()]


@pytest.mark.parametrize("sizes", [[8, 8, 8, 8], [8, 8, 8, 3]], ids=["equal", "short-last-batch"])
def test_grad_accum_equals_one_big_batch(sizes):
    g = torch.Generator().manual_seed(1)
    micro = [(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)) for n in sizes]
    big = (torch.cat([x for x, _ in micro]), torch.cat([y for _, y in micro]))
    accumulated = params_after(Settings(accum_steps=len(sizes)), [micro])
    single = params_after(Settings(), [[big]])
    for a, b in zip(accumulated, single):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_step_changes_parameters_and_counts_steps():
    state = make_state(tiny_cnn(), device="cpu", lr=0.1)
    before = [p.detach().clone() for p in state.module.parameters()]
    loss = train_step(state, batches(1, 8))
    assert state.step == 1
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, state.module.parameters()))


def test_bf16_autocast_loss_close_to_fp32():
    model = create_model("resnet18", num_classes=10, image_size=32).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    fp32 = make_state(copy.deepcopy(model), device="cpu", settings=compose(["baseline"], OptContext("cpu")))
    bf16 = make_state(copy.deepcopy(model), device="cpu", settings=compose(["amp_bf16"], OptContext("cpu")))
    losses, dtypes = [], []
    for state in (fp32, bf16):
        with torch.no_grad(), state.autocast():
            logits = state.model(state.move_input(x))
            losses.append(state.criterion(logits, y).float())
        dtypes.append(logits.dtype)
    assert dtypes == [torch.float32, torch.bfloat16]  # the autocast really ran in bf16
    torch.testing.assert_close(losses[1], losses[0], rtol=0.03, atol=0.03)


def test_channels_last_output_equals_contiguous():
    model = create_model("resnet18", num_classes=10, image_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    plain = make_state(copy.deepcopy(model), device="cpu")
    nhwc = make_state(copy.deepcopy(model), device="cpu", settings=compose(["channels_last"], OptContext("cpu")))
    moved = nhwc.move_input(x)
    assert moved.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(nhwc.model(moved), plain.model(plain.move_input(x)), rtol=1e-4, atol=1e-4)


def test_text_inputs_keep_their_layout_under_channels_last():
    state = make_state(nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2)), device="cpu",
                       settings=Settings(channels_last=True), image_inputs=False)
    ids = torch.randint(0, 10, (2, 3))
    assert torch.equal(state.move_input(ids), ids)


def test_disabled_scaler_and_autocast_are_no_ops():
    state = make_state(tiny_cnn(), device="cpu")
    assert not state.scaler.is_enabled()
    loss = torch.tensor(3.0)
    assert state.scaler.scale(loss) is loss
    with state.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_evaluate_reports_accuracy_top5_and_loss():
    state = make_state(tiny_cnn(num_classes=10), device="cpu")
    data = batches(3, 8, num_classes=10)
    metrics = evaluate(state, data)
    assert metrics["samples"] == 24
    assert 0.0 <= metrics["accuracy"] <= metrics["top5"] <= 1.0
    assert metrics["loss"] > 0
    assert state.model.training  # evaluation restores the mode


def test_evaluate_counts_correct_predictions_exactly():
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4))
    state = make_state(model, device="cpu")
    x = torch.eye(4)
    y = torch.tensor([0, 1, 3, 3])  # 3 of 4 argmaxes match
    assert evaluate(state, [(x, y)])["accuracy"] == pytest.approx(0.75)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_lr_schedules_warm_up_then_follow_their_shape(schedule):
    from hpml.train.state import lr_lambda

    f = lr_lambda(schedule, total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    end = f(99)
    if schedule == "constant":
        assert end == 1.0
    else:
        assert end < 0.05 and f(50) < 1.0
