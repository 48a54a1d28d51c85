"""Synthetic twins: lazy, deterministic by seed, learnable, shaped like the real data."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hpml.data import create_dataset, dataset_info
from hpml.data.synthetic import SyntheticImages, SyntheticReviews
from hpml.errors import HpmlError

FEW = settings(max_examples=15, deadline=None)


@FEW
@given(seed=st.integers(0, 2**20), index=st.integers(0, 9_999), name=st.sampled_from(["cifar10", "cifar100"]))
def test_images_depend_only_on_seed_split_index(seed: int, index: int, name: str) -> None:
    a = create_dataset(name, "train", seed=seed, augment=False)
    b = create_dataset(name, "train", seed=seed, augment=False)
    other = create_dataset(name, "train", seed=seed + 1, augment=False)
    test = create_dataset(name, "test", seed=seed, augment=False)
    xa, ya = a[index]
    xb, yb = b[index]
    assert torch.equal(xa, xb) and ya == yb
    assert not torch.equal(xa, other[index][0])
    assert not torch.equal(xa, test[index][0])


@FEW
@given(seed=st.integers(0, 2**20), index=st.integers(0, 10**6))
def test_reviews_depend_only_on_seed_split_index(seed: int, index: int) -> None:
    a = SyntheticReviews(2, "train", 10**7, seed)
    assert a.text(index) == SyntheticReviews(2, "train", 10**7, seed).text(index)
    assert a.label(index) == SyntheticReviews(2, "train", 10**7, seed).label(index)
    assert a.text(index) != SyntheticReviews(2, "train", 10**7, seed + 1).text(index)
    assert a.text(index) != SyntheticReviews(2, "test", 10**7, seed).text(index)


def test_text_twin_goes_through_the_tokenizer() -> None:
    ds = create_dataset("amazon_full", "train", size=20, seq_len=64)
    ids, labels = ds.arrays()
    assert ids.shape == (20, 64) and set(labels.tolist()) <= set(range(5))
    assert torch.equal(ids[7], ds[7][0])
    assert ds.tokenizer.decode(ids[7].tolist()).split()[:3] == ds.source.text(7).split()[:3]


def test_full_size_imagenet_twin_is_lazy() -> None:
    start = time.perf_counter()
    ds = create_dataset("imagenet", "train", image_size=64)
    assert len(ds) == dataset_info("imagenet").train_size
    x, y = ds[len(ds) - 1]
    assert x.shape == (3, 64, 64) and 0 <= y < 1000
    assert time.perf_counter() - start < 2.0  # s; nothing is materialised
    full = create_dataset("imagenet", "train")  # 1.28M x 3 x 224 x 224 bytes: far over the limit
    with pytest.raises(HpmlError, match="arrays\\(\\) would need 179.* GiB.*pass size="):
        full.arrays()


def test_arrays_equal_native_samples() -> None:
    ds = create_dataset("cifar10", "test", size=6, seed=3)
    assert isinstance(ds, SyntheticImages)
    images, labels = ds.arrays()
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    for i in range(6):
        image, label = ds.sample(i)
        assert torch.equal(images[i], image) and labels[i] == label


def test_image_twin_is_learnable() -> None:
    """Nearest class mean on 4x4-pooled pixels, fit on train, scores well above chance on test."""
    train = create_dataset("cifar10", "train", size=400)
    test = create_dataset("cifar10", "test", size=200)

    def features(ds: SyntheticImages) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = ds.arrays()
        return torch.nn.functional.avg_pool2d(x.float(), 8).flatten(1), y

    xtr, ytr = features(train)
    xte, yte = features(test)
    means = torch.stack([xtr[ytr == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(xte, means).argmin(1) == yte).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1


def test_text_twin_is_learnable() -> None:
    """Counting positive vs negative sentiment words separates the polarity twin's classes."""
    reviews = SyntheticReviews(2, "test", 200, seed=0)
    negative = {"terrible", "awful", "worst", "broken", "useless"}
    positive = {"great", "excellent", "love", "perfect", "best"}
    correct = 0
    for i in range(len(reviews)):
        words = set(reviews.text(i).lower().replace(".", " ").replace("!", " ").split())
        guess = int(len(words & positive) >= len(words & negative))
        correct += guess == reviews.label(i)
    assert correct / len(reviews) > 0.8  # chance is 0.5
