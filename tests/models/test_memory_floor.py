"""``activation_floor_bytes`` must stay a floor: never above what autograd really saves,
or hpml would refuse batches that fit (it refuses sizes whose floor exceeds memory)."""

from __future__ import annotations

import pytest
import torch

from hpml.models import activation_floor_bytes, create_model


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd keeps for backward in one training forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("side", [16, 96])  # CIFAR stem, ImageNet stem
def test_resnet_floor_is_below_what_autograd_saves(name: str, side: int) -> None:
    model = create_model(name, num_classes=10, image_size=side)
    batch = 2
    floor = batch * activation_floor_bytes(name, image_size=side)
    actual = saved_bytes(model, torch.randn(batch, 3, side, side))
    assert floor <= actual
    assert floor > actual / 20  # and still a useful bound, not zero


def test_xlnet_floor_is_below_what_autograd_saves() -> None:
    model = create_model("xlnet", num_classes=2, preset="tiny", vocab_size=100, pad_id=0)
    seq = 16
    floor = 2 * activation_floor_bytes("xlnet", seq_len=seq, preset="tiny")
    actual = saved_bytes(model, torch.randint(1, 100, (2, seq)))
    assert floor <= actual
