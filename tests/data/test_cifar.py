"""CIFAR-10/100 read from pickle batches written exactly as the tarballs hold them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hpml.data import create_dataset
from hpml.data.cifar import decode_batch, read_batch
from hpml.data.formats import noise_images, write_cifar_batch
from hpml.errors import HpmlError

from .samples import CIFAR_TEST, CIFAR_TRAIN_PER_BATCH


def test_reader_matches_plain_pickle(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    assert path.stat().st_size < 16_000  # bytes: a few images
    with open(path, "rb") as f:
        plain = pickle.load(f, encoding="bytes")
    ours = read_batch(path)
    assert ours.keys() == plain.keys() and ours[b"labels"] == plain[b"labels"]
    images, labels = decode_batch(path, b"labels", 10)
    expected = torch.from_numpy(plain[b"data"]).view(-1, 3, 32, 32)
    assert images.dtype == torch.uint8 and torch.equal(images, expected)
    assert torch.equal(labels, torch.tensor(plain[b"labels"]))


def test_cifar10_splits(cifar10_dir: Path) -> None:
    train = create_dataset("cifar10", "train", data_dir=cifar10_dir)
    test = create_dataset("cifar10", "test", data_dir=cifar10_dir)
    assert not train.synthetic and len(train) == 5 * CIFAR_TRAIN_PER_BATCH and len(test) == CIFAR_TEST
    images, labels = test.arrays()
    assert images.shape == (CIFAR_TEST, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [3, 1, 4] and labels.dtype == torch.int64
    # batches are concatenated in order: data_batch_1 first
    assert torch.equal(train.arrays()[0][:2], torch.from_numpy(noise_images(2, 32, 32, 1)))
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 2


def test_eval_transform_is_normalisation(cifar10_dir: Path) -> None:
    test = create_dataset("cifar10", "test", data_dir=cifar10_dir)
    raw = test.arrays()[0][0].float() / 255
    mean = torch.tensor(test.info.mean).view(3, 1, 1)
    std = torch.tensor(test.info.std).view(3, 1, 1)
    assert torch.allclose(test[0][0], (raw - mean) / std, atol=1e-6)


def test_data_dir_may_be_the_batches_folder(cifar10_dir: Path) -> None:
    ds = create_dataset("cifar10", "test", data_dir=cifar10_dir / "cifar-10-batches-py")
    assert len(ds) == CIFAR_TEST


def test_size_takes_leading_samples(cifar10_dir: Path) -> None:
    full = create_dataset("cifar10", "train", data_dir=cifar10_dir)
    head = create_dataset("cifar10", "train", data_dir=cifar10_dir, size=3)
    assert len(head) == 3 and torch.equal(head.arrays()[0], full.arrays()[0][:3])
    with pytest.raises(HpmlError, match="size=11 exceeds the 10 samples"):
        create_dataset("cifar10", "train", data_dir=cifar10_dir, size=11)


def test_image_size_override(cifar10_dir: Path) -> None:
    ds = create_dataset("cifar10", "train", data_dir=cifar10_dir, image_size=64)
    assert ds[0][0].shape == (3, 64, 64)
    assert ds.arrays()[0].shape[-1] == 32  # arrays() stay at the native side


def test_cifar100_fine_labels(cifar100_dir: Path) -> None:
    train = create_dataset("cifar100", "train", data_dir=cifar100_dir)
    test = create_dataset("cifar100", "test", data_dir=cifar100_dir, augment=True)
    assert train.arrays()[1].tolist() == [99, 0, 42, 7] and len(test) == 2
    assert test[1][0].shape == (3, 32, 32) and test[1][1] == 98


def test_truncated_batch_names_file(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(HpmlError, match=f"corrupt CIFAR batch {path}"):
        create_dataset("cifar10", "test", data_dir=cifar10_dir)


def test_wrong_array_size_names_file(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(HpmlError, match=rf"{path}: data is uint8\[2, 3000\], expected uint8\[N, 3072\]"):
        create_dataset("cifar10", "test", data_dir=cifar10_dir)


def test_label_count_and_range_checked(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    write_cifar_batch(path, noise_images(2, 32, 32, 0), [1], (b"labels",))
    with pytest.raises(HpmlError, match="1 labels for 2 images"):
        create_dataset("cifar10", "test", data_dir=cifar10_dir)
    write_cifar_batch(path, noise_images(2, 32, 32, 0), [1, 10], (b"labels",))
    with pytest.raises(HpmlError, match=r"labels outside 0\.\.9"):
        create_dataset("cifar10", "test", data_dir=cifar10_dir)


def test_missing_train_batch_names_file(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "data_batch_4"
    path.unlink()
    with pytest.raises(HpmlError, match=f"missing CIFAR batch {path}"):
        create_dataset("cifar10", "train", data_dir=cifar10_dir)


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Evil()}, f, protocol=2)
    with pytest.raises(HpmlError, match=rf"corrupt CIFAR batch {path}: .*refusing to load"):
        create_dataset("cifar10", "test", data_dir=cifar10_dir)


def test_wrong_layout_names_expected_files(tmp_path: Path) -> None:
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(HpmlError, match=r"expected cifar-100-python/\{train,test,meta\}; get it from https://"):
        create_dataset("cifar100", "train", data_dir=tmp_path)
