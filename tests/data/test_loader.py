"""make_loader and DeviceLoader: every sample once per epoch, determinism, aligned augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import Dataset

from hpml.data import create_dataset, dataset_info
from hpml.data.base import TensorImageDataset
from hpml.data.loader import DeviceLoader, LoaderOptions, make_loader
from hpml.data.transforms import cifar_transform
from hpml.errors import HpmlError

FEW = settings(max_examples=15, deadline=None)


class IndexDataset(Dataset):
    """Sample i is (float tensor [1] holding i, label i)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([float(i)]), i


def coded_images(n: int, *, augment: bool, name: str = "cifar10") -> TensorImageDataset:
    """Image i is filled with the value 7 * i (uint8), label i: alignment is checkable."""
    assert n <= 36
    info = dataset_info(name)
    images = (torch.arange(n, dtype=torch.uint8) * 7).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    return TensorImageDataset(
        images,
        torch.arange(n),
        info,
        "train",
        synthetic=True,
        augment=augment,
        transform=cifar_transform(info, augment, 32),
        image_size=32,
    )


def _expected_batches(n: int, batch: int, drop_last: bool) -> int:
    return n // batch if drop_last else math.ceil(n / batch)


@FEW
@given(
    n=st.integers(1, 40),
    batch=st.integers(1, 16),
    drop_last=st.booleans(),
    workers=st.sampled_from([0, 1, 2]),
    shuffle=st.booleans(),
)
def test_make_loader_yields_each_sample_once(
    n: int, batch: int, drop_last: bool, workers: int, shuffle: bool
) -> None:
    options = LoaderOptions(batch_size=batch, shuffle=shuffle, num_workers=workers, drop_last=drop_last)
    loader = make_loader(IndexDataset(n), options)
    batches = list(loader)
    assert len(batches) == len(loader) == _expected_batches(n, batch, drop_last)
    seen = torch.cat([y for _, y in batches]).tolist() if batches else []
    assert all(y.dtype == torch.int64 for _, y in batches)
    assert len(seen) == len(set(seen)) == (n - n % batch if drop_last else n)
    if not shuffle:
        assert seen == list(range(len(seen)))
    for x, y in batches:
        assert torch.equal(x.view(-1).long(), y)


@FEW
@given(
    n=st.integers(1, 36),
    batch=st.integers(1, 16),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    augment=st.booleans(),
    seed=st.integers(0, 100),
)
def test_device_loader_yields_each_sample_once_aligned(
    n: int, batch: int, drop_last: bool, shuffle: bool, augment: bool, seed: int
) -> None:
    ds = coded_images(n, augment=augment)
    loader = DeviceLoader(ds, batch, "cpu", shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = list(loader)
    assert len(batches) == len(loader) == _expected_batches(n, batch, drop_last)
    seen = torch.cat([y for _, y in batches]).tolist() if batches else []
    assert len(seen) == len(set(seen)) == (n - n % batch if drop_last else n)
    mean = torch.tensor(ds.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.info.std).view(1, 3, 1, 1)
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape == (len(y), 3, 32, 32) and y.dtype == torch.int64
        pixels = ((x * std + mean) * 255).round()
        # the centre is never padding (4 px): it still holds the code of the label
        assert torch.equal(pixels[:, :, 16, 16], (y * 7).float().view(-1, 1).expand(-1, 3))


def test_device_loader_augments_and_matches_cpu_eval() -> None:
    ds = create_dataset("cifar10", "train", size=64)
    loader = DeviceLoader(ds, 64, "cpu", shuffle=False)
    x, y = next(iter(loader))
    plain, _ = next(iter(DeviceLoader(ds, 64, "cpu", shuffle=False, augment=False)))
    assert not torch.equal(x, plain)
    # eval batches equal the per-sample eval transform exactly
    test = create_dataset("cifar10", "test", size=8)
    xb, yb = next(iter(DeviceLoader(test, 8, "cpu", shuffle=False)))
    assert torch.allclose(xb, torch.stack([test[i][0] for i in range(8)]), atol=1e-5)
    assert yb.tolist() == [test[i][1] for i in range(8)]


def test_device_loader_epochs_are_deterministic() -> None:
    ds = create_dataset("cifar10", "train", size=32)
    a = DeviceLoader(ds, 8, "cpu", seed=5)
    b = DeviceLoader(ds, 8, "cpu", seed=5)
    first = [x for x, _ in a]
    second = [x for x, _ in a]  # the epoch advanced: a new order and new crops
    assert all(torch.equal(p, q) for p, q in zip(first, (x for x, _ in b)))
    assert not all(torch.equal(p, q) for p, q in zip(first, second))
    b.set_epoch(1)
    assert all(torch.equal(p, q) for p, q in zip(second, (x for x, _ in b)))


def test_device_loader_respects_no_flip() -> None:
    ds = create_dataset("digits", "train", size=1)
    images = torch.zeros(36, 3, 32, 32, dtype=torch.uint8)
    images[:, :, :, 16:] = 255
    twin = TensorImageDataset(
        images, torch.zeros(36, dtype=torch.int64), ds.info, "train",
        synthetic=True, augment=True, transform=ds.transform, image_size=32,
    )  # fmt: skip
    x, _ = next(iter(DeviceLoader(twin, 36, "cpu")))
    assert (x[:, :, :, 8] < 0).all()  # column 8 stays dark: nothing was mirrored


def test_device_loader_text_and_resize(tmp_path: Path) -> None:
    text = create_dataset("amazon_polarity", "test", size=10, seq_len=16)
    batches = list(DeviceLoader(text, 4, "cpu"))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 16), (4, 16), (2, 16)]
    assert all(x.dtype == y.dtype == torch.int64 for x, y in batches)
    big = create_dataset("digits", "test", image_size=48, size=5)
    x, _ = next(iter(DeviceLoader(big, 5, "cpu")))
    assert x.shape == (5, 3, 48, 48)


def test_device_loader_refuses_per_sample_sets(tmp_path: Path) -> None:
    class NoArrays(TensorImageDataset):
        def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
            raise HpmlError("imagenet (train) is decoded per sample and has no arrays()")

    ds = coded_images(2, augment=False)
    bad = NoArrays(ds.images, ds.labels, ds.info, "train", synthetic=True, augment=False,
                   transform=ds.transform, image_size=32)  # fmt: skip
    with pytest.raises(HpmlError, match="decoded per sample"):
        DeviceLoader(bad, 2, "cpu")
    with pytest.raises(HpmlError, match="batch_size must be >= 1"):
        DeviceLoader(ds, 0, "cpu")


@pytest.mark.parametrize("workers", [0, 2])
def test_make_loader_is_deterministic_by_seed(workers: int) -> None:
    ds = create_dataset("cifar10", "train", size=24)

    def epoch(seed: int) -> list[torch.Tensor]:
        options = LoaderOptions(batch_size=8, num_workers=workers, seed=seed)
        return [x for x, _ in make_loader(ds, options)]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(batch_size=1, num_workers=-1), "num_workers must be >= 0"),
        (dict(batch_size=1, persistent_workers=True), "persistent_workers=True needs num_workers >= 1"),
        (dict(batch_size=1, prefetch_factor=2), "prefetch_factor needs num_workers >= 1"),
        (dict(batch_size=1, num_workers=1, prefetch_factor=0), "prefetch_factor must be >= 1"),
    ],
)
def test_loader_options_validate(kwargs: dict, match: str) -> None:
    with pytest.raises(HpmlError, match=match):
        LoaderOptions(**kwargs)


def test_make_loader_with_a_sampler_shards() -> None:
    from torch.utils.data import DistributedSampler

    ds = IndexDataset(10)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        loader = make_loader(ds, LoaderOptions(batch_size=2, shuffle=False), sampler=sampler)
        seen += torch.cat([y for _, y in loader]).tolist()
    assert sorted(seen) == list(range(10))
    with pytest.raises(HpmlError, match="shuffle=True conflicts with a sampler"):
        make_loader(ds, LoaderOptions(batch_size=2), sampler=DistributedSampler(ds, num_replicas=2, rank=0))


def _worker_batches(start_method: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ds = create_dataset("cifar10", "train", size=12)  # synthetic twin, random crop + flip
    loader = make_loader(ds, LoaderOptions(batch_size=4, num_workers=1, seed=3))
    loader.multiprocessing_context = start_method
    return list(loader)


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_workers_start_with_spawn_and_forkserver(start_method: str) -> None:
    # Issue 14, group 1: the dataset's torch.Generator crashed spawned/forkserver workers
    # (macOS's default, DDP ranks', Linux's from Python 3.14).  They must start, and
    # augment exactly as forked workers do (the generator is reseeded per worker).
    forked = _worker_batches("fork")
    started = _worker_batches(start_method)
    assert len(started) == len(forked) == 3
    for (xs, ys), (xf, yf) in zip(started, forked):
        assert torch.equal(ys, yf)
        assert torch.equal(xs, xf)


def test_dataset_pickles_without_its_generator() -> None:
    import pickle

    ds = create_dataset("cifar10", "train", size=4)
    ds.seed_augmentation(5)
    copy = pickle.loads(pickle.dumps(ds))
    assert "_rng" not in ds.__getstate__()
    copy.seed_augmentation(5)
    assert torch.equal(copy[1][0], ds[1][0])  # same seed, same augmentation after the trip


def test_device_loader_gives_imagenet_its_resized_crop_not_cifars_pad_crop(monkeypatch) -> None:
    """The device loader's speedup must be the same work: ImageNet's random resized crop."""
    import hpml.data.loader as loader_module

    monkeypatch.setattr(loader_module, "pad_crop_flip_batch", lambda *a: pytest.fail("CIFAR's pad-crop on ImageNet"))
    ds = create_dataset("imagenet", "train", size=16, image_size=32)
    x, _ = next(iter(DeviceLoader(ds, 16, "cpu", seed=1)))
    plain, _ = next(iter(DeviceLoader(ds, 16, "cpu", seed=1, augment=False)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert not torch.equal(x, plain)
    assert torch.isfinite(x).all()


@FEW
@given(h=st.integers(8, 64), w=st.integers(8, 64), seed=st.integers(0, 1000))
def test_resized_crop_boxes_fit_the_image_and_the_recipe(h: int, w: int, seed: int) -> None:
    from hpml.data.transforms import RandomResizedCropFlip, resized_crop_boxes

    boxes = resized_crop_boxes(64, h, w, torch.Generator().manual_seed(seed))
    top, left, bh, bw = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= h).all() and (left + bw <= w).all()
    assert (bh >= 1).all() and (bw >= 1).all()
    lo, hi = RandomResizedCropFlip.scale
    tried = (bh * bw >= lo * h * w * 0.5) & (bh * bw <= hi * h * w)  # rounding of small boxes
    assert tried.float().mean() > 0.5


def test_resized_crop_of_the_whole_image_is_the_image_and_its_flip() -> None:
    from hpml.data.transforms import resized_crop_flip_batch

    images = torch.rand(2, 3, 12, 10)
    whole = torch.tensor([[0.0, 0.0, 12.0, 10.0]] * 2)
    out = resized_crop_flip_batch(images, whole, torch.tensor([False, True]), 12)
    ref = torch.nn.functional.interpolate(images, size=(12, 12), mode="bilinear", align_corners=False)
    assert torch.allclose(out[0], ref[0], atol=1e-5) and torch.allclose(out[1], ref[1].flip(-1), atol=1e-5)
