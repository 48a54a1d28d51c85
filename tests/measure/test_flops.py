"""FLOP counts: exact on small layers, the published figures on ResNets, no side effects."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torchvision

from hpml.errors import HpmlError
from hpml.measure import flops_per_sample


def test_linear_forward_is_two_flops_per_mac() -> None:
    x = torch.randn(4, 64)
    assert flops_per_sample(nn.Linear(64, 32, bias=False), x, train=False) == 2 * 64 * 32


def test_linear_training_adds_only_the_weight_gradient() -> None:
    # The input needs no gradient, so backward is one matmul (grad_W), not two: 2x forward.
    x = torch.randn(4, 64)
    assert flops_per_sample(nn.Linear(64, 32, bias=False), x, train=True) == 2 * (2 * 64 * 32)


def test_two_layer_training_is_forward_plus_both_gradients() -> None:
    mlp = nn.Sequential(nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 16, bias=False))
    x = torch.randn(4, 64)
    forward = 2 * (64 * 32 + 32 * 16)
    assert flops_per_sample(mlp, x, train=False) == forward
    # backward: grad_W of both layers + grad_input of the second only.
    assert flops_per_sample(mlp, x, train=True) == forward + forward + 2 * 32 * 16


def _on_meta(builder: Callable[[], nn.Module]) -> nn.Module:
    # FlopCounterMode counts from shapes, so a meta-device model gives the count
    # without allocating or computing anything (ResNet-50 training in ~0.1 s).
    with torch.device("meta"):
        return builder()


def test_resnet18_matches_published_figure() -> None:
    model = _on_meta(torchvision.models.resnet18)
    x = torch.empty(1, 3, 224, 224, device="meta")
    forward = flops_per_sample(model, x, train=False)
    assert forward == pytest.approx(3.64e9, rel=0.05)  # 1.82 GMACs
    assert 2.8 * forward < flops_per_sample(model, x, train=True) < 3.0 * forward  # conv1: no input grad


def test_resnet50_forward_is_8_18_gflops() -> None:
    model = _on_meta(torchvision.models.resnet50)
    x = torch.empty(1, 3, 224, 224, device="meta")
    assert flops_per_sample(model, x, train=False) == pytest.approx(8.18e9, rel=0.05)  # 4.09 GMACs


def test_counting_leaves_no_side_effects() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    buffers = [b.clone() for b in model.buffers()]
    rng = torch.get_rng_state()

    flops_per_sample(model, x, train=True)  # in train mode BN updates its stats, dropout draws

    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(b, s) for b, s in zip(model.buffers(), buffers))  # BN running stats
    assert torch.equal(torch.get_rng_state(), rng)


def test_existing_gradients_are_restored() -> None:
    layer = nn.Linear(8, 4)
    layer(torch.randn(3, 8)).sum().backward()
    before = [p.grad.clone() for p in layer.parameters()]  # type: ignore[union-attr]
    flops_per_sample(layer, torch.randn(2, 8), train=True)
    assert all(torch.equal(p.grad, g) for p, g in zip(layer.parameters(), before))


def test_xlnet_classifier_on_token_ids() -> None:
    pytest.importorskip("transformers")
    from hpml.models import create_model

    model = create_model("xlnet", num_classes=2, preset="tiny")
    ids = torch.randint(1, 100, (2, 16), dtype=torch.int64)
    forward = flops_per_sample(model, ids, train=False)
    train = flops_per_sample(model, ids, train=True)
    assert forward > 0 and 2 * forward < train < 3 * forward
    assert all(p.grad is None for p in model.parameters())


def test_scalar_input_is_an_hpml_error() -> None:
    with pytest.raises(HpmlError, match="batch"):
        flops_per_sample(nn.Linear(1, 1), torch.tensor(1.0))


@pytest.mark.gpu
def test_cuda_count_matches_cpu() -> None:
    model = nn.Sequential(nn.Linear(64, 32, bias=False), nn.Linear(32, 16, bias=False))
    x = torch.randn(4, 64)
    cpu = flops_per_sample(model, x)
    assert flops_per_sample(model.cuda(), x.cuda()) == cpu
