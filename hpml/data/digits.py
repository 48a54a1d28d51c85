"""scikit-learn's bundled 8x8 digits as uint8 ``[N, 3, 32, 32]``, so ResNet trains on real data offline.

The 80/20 split is stratified with a fixed seed; augmentation never flips (a mirrored 2 is no 2)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hpml.data import register_dataset
from hpml.data.base import DataRequest, DatasetInfo, TensorImageDataset, take_first
from hpml.data.cifar import STORAGE
from hpml.data.transforms import cifar_transform

_SPLIT_SEED = 0  # fixed: the test split must not move with the run's seed
_TEST_FRACTION = 0.2

DIGITS = DatasetInfo(
    name="digits",
    modality="image",
    num_classes=10,
    model="resnet50",
    train_size=1437,
    test_size=360,
    image_size=32,
    # gray replicated to 3 channels; measured on the train split at 32x32, 0..1 scale
    mean=(0.3054, 0.3054, 0.3054),
    std=(0.3237, 0.3237, 0.3237),
    files="(none: bundled with scikit-learn)",
    source="sklearn.datasets.load_digits() (no download)",
    hflip=False,
)


def digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``(uint8[1797, 3, 32, 32], int64[1797])``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).to(torch.float32) * (255 / 16)  # 0..16 -> 0..255
    x = F.interpolate(x[:, None], size=(32, 32), mode="bilinear", align_corners=False)
    images = x.round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return images, torch.from_numpy(bunch.target.astype(np.int64))


def split_indices(labels: torch.Tensor, split: str) -> np.ndarray:
    """Sorted sample indices of ``split`` in the fixed stratified 80/20 split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(
        index, test_size=_TEST_FRACTION, stratify=labels.numpy(), random_state=_SPLIT_SEED
    )
    return np.sort(train if split == "train" else test)


@register_dataset(DIGITS, transform=cifar_transform, bundled=True, storage=STORAGE)  # CIFAR's, but never flipped
def digits(request: DataRequest) -> TensorImageDataset:
    images, labels = digits_arrays()
    keep = split_indices(labels, request.split)
    keep = keep[: take_first(len(keep), request.size, "digits " + request.split)]
    assert request.transform is not None
    return TensorImageDataset(
        images[keep],
        labels[keep],
        request.info,
        request.split,
        synthetic=False,
        augment=request.augment,
        transform=request.transform,
        image_size=request.image_size,
    )
