"""Model registry: ``create_model(name, num_classes=..., **kw)`` and ``list_models()``.

Every model takes one input tensor and returns class logits, so the training step
never needs to know which model it drives:

* image models take ``float[B, 3, H, W]``;
* text models take ``int64[B, L]`` token ids (padding derived inside the model).

>>> import hpml
>>> model = hpml.create_model("resnet18", num_classes=10, image_size=32)
>>> sum(p.numel() for p in model.parameters())
11173962
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from hpml.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
register_model = MODELS.register


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with a ``num_classes``-way classifier head."""
    return MODELS.get(name)(num_classes=num_classes, **kwargs)


def list_models() -> list[str]:
    return MODELS.names()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def activation_floor_bytes(name: str, *, image_size: int = 0, seq_len: int = 0, preset: str | None = None) -> int:
    """A floor (bytes) on the activations training keeps per sample for backward, fp32.

    ResNet: the input, the stem's two 64-channel maps and the first stage's six (each
    block keeps at least its conv output, its ReLU output and its sum; ResNet-50's
    bottlenecks keep more), at full size with the CIFAR stem, at 1/2 (stem) and 1/4
    (first stage) with the ImageNet stem.  XLNet: one d_model-wide hidden state per
    token per layer.  A floor, not an estimate (tests/models checks it against what
    autograd saves): it refuses impossible sizes, never ones that might fit.
    """
    if name == "xlnet":
        shape = xlnet.PRESETS.get(preset or "base", xlnet.PRESETS["base"])
        return 4 * seq_len * shape["d_model"] * shape["n_layer"]
    if image_size <= resnet.CIFAR_STEM_MAX_SIZE:
        stem = stage = image_size
    else:
        stem, stage = image_size // 2, image_size // 4
    return 4 * (3 * image_size**2 + 2 * 64 * stem**2 + 6 * 64 * stage**2)


# Importing the family modules registers their models.
from hpml.models import resnet, xlnet  # noqa: E402,F401

__all__ = ["MODELS", "register_model", "create_model", "list_models", "count_parameters", "activation_floor_bytes"]
