"""The example plugin of README's "Your own model" section, installed for real in a test.

``tests/plugins/test_plugins.py`` writes it, with a ``.dist-info`` holding its entry
points, into a folder on ``PYTHONPATH``: what ``pip install`` of a package declaring
``[project.entry-points."hpml.models"]`` would leave in site-packages.
"""

import torch
import torch.nn as nn

from hpml.data import register_dataset
from hpml.data.base import DataRequest, DatasetInfo, TensorImageDataset
from hpml.data.transforms import cifar_transform
from hpml.models import register_model


class TinyNet(nn.Module):
    """Two convolutions and a linear head: any image size, ``num_classes`` logits."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("tinynet", modality="image", source="plugin")
def tinynet(num_classes: int, image_size: int = 32, weights=None) -> nn.Module:
    return TinyNet(num_classes)


STRIPES = DatasetInfo(
    name="stripes", modality="image", num_classes=2, model="tinynet",
    train_size=64, test_size=32, image_size=16, mean=(0.5,) * 3, std=(0.5,) * 3,
    files="(none: generated)", source="example plugin", hflip=False,
)


@register_dataset(STRIPES, transform=cifar_transform, bundled=True)
def stripes(request: DataRequest) -> TensorImageDataset:
    """Horizontal (class 0) or vertical (class 1) stripes: learnable in a few steps."""
    n = request.size or (STRIPES.train_size if request.split == "train" else STRIPES.test_size)
    labels = torch.arange(n) % 2
    line = (torch.arange(16) % 4 < 2).to(torch.uint8) * 255
    horizontal = line[:, None].expand(16, 16)
    images = torch.stack([horizontal if y == 0 else horizontal.T for y in labels])
    images = images[:, None].expand(-1, 3, -1, -1).contiguous()
    return TensorImageDataset(images, labels, request.info, request.split, synthetic=False,
                              augment=request.augment, transform=request.transform, image_size=request.image_size)
