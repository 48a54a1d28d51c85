"""ResNet-18/50 with torchvision's ImageNet stem, or for small images the CIFAR stem
(3x3/stride-1 conv, no pool, as kuangliu/pytorch-cifar), picked from ``image_size``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch.nn as nn
import torchvision

from hpml.models import register_model
from hpml.models.weights import load_backbone, load_state_dict_file

#: Images at most this many pixels wide get the CIFAR stem.
CIFAR_STEM_MAX_SIZE = 64


def _resnet(
    builder: Callable[..., torchvision.models.ResNet],
    num_classes: int,
    image_size: int = 224,
    weights: str | Path | None = None,
) -> nn.Module:
    model = builder(weights=None, num_classes=num_classes)
    if image_size <= CIFAR_STEM_MAX_SIZE:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    if weights is not None:
        load_backbone(model, load_state_dict_file(weights), weights)
    return model


@register_model("resnet50")
def resnet50(num_classes: int, image_size: int = 224, weights: str | Path | None = None) -> nn.Module:
    """ResNet-50 (25,557,032 parameters with the ImageNet stem and 1000 classes)."""
    return _resnet(torchvision.models.resnet50, num_classes, image_size, weights)


@register_model("resnet18")
def resnet18(num_classes: int, image_size: int = 224, weights: str | Path | None = None) -> nn.Module:
    """ResNet-18, for quick runs."""
    return _resnet(torchvision.models.resnet18, num_classes, image_size, weights)
