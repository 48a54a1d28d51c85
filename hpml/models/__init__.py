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


# Importing the family modules registers their models.
from hpml.models import resnet, xlnet  # noqa: E402,F401

__all__ = ["MODELS", "register_model", "create_model", "list_models", "count_parameters"]
