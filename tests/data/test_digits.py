"""scikit-learn digits as a 32x32 RGB, 10-class dataset with a fixed split."""

from __future__ import annotations

import torch

from hpml.data import create_dataset, dataset_info
from hpml.data.transforms import PadCropFlip


def test_shapes_classes_and_split_sizes() -> None:
    train = create_dataset("digits", "train")
    test = create_dataset("digits", "test")
    info = dataset_info("digits")
    assert info.num_classes == 10 and len(train) == info.train_size and len(test) == info.test_size
    assert len(train) + len(test) == 1797
    images, labels = train.arrays()
    assert images.shape == (len(train), 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[:, 0], images[:, 2]) and int(images.max()) == 255
    assert sorted(set(labels.tolist())) == list(range(10))
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)


def test_split_is_fixed_stratified_and_disjoint() -> None:
    a = create_dataset("digits", "test", seed=0).arrays()
    b = create_dataset("digits", "test", seed=123).arrays()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    counts = torch.bincount(a[1], minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # 20% of ~180 per class
    train = create_dataset("digits", "train").arrays()[0].flatten(1)
    test = a[0].flatten(1)
    assert not (torch.cdist(test[:50].float(), train.float()) == 0).any()


def test_augmentation_crops_without_flipping() -> None:
    ds = create_dataset("digits", "train")
    assert isinstance(ds.transform, PadCropFlip) and ds.transform.hflip is False
    assert not dataset_info("digits").hflip


def test_normalisation_matches_train_statistics() -> None:
    images = create_dataset("digits", "train").arrays()[0].float() / 255
    info = dataset_info("digits")
    assert abs(images.mean().item() - info.mean[0]) < 1e-3 and abs(images.std().item() - info.std[0]) < 1e-3
