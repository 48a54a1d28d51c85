"""The registry contract: names, infos, source selection and the synthetic twins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpml.data import DATASETS, HpmlDataset, create_dataset, dataset_info, list_datasets
from hpml.errors import HpmlError

REQUIRED = {"cifar10", "cifar100", "imagenet", "amazon_polarity", "amazon_full", "digits"}


def test_list_datasets_has_the_six() -> None:
    assert REQUIRED <= set(list_datasets())


@pytest.mark.parametrize("name", list_datasets())
def test_info_is_consistent(name: str) -> None:
    info = dataset_info(name)
    assert info.name == name and info.num_classes >= 2
    assert info.train_size > 0 and info.test_size > 0 and info.files and info.source
    if info.modality == "image":
        assert info.model == "resnet50" and info.image_size > 0 and info.seq_len == 0
        assert len(info.mean) == len(info.std) == 3
    else:
        assert info.modality == "text" and info.model == "xlnet" and info.seq_len > 0 and info.image_size == 0


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("name", list_datasets())
def test_synthetic_twin_sample(name: str, split: str) -> None:
    info = dataset_info(name)
    image_size = 48 if name == "imagenet" else None  # keep the 224 px twin cheap here
    ds = create_dataset(name, split, synthetic=True, size=5, image_size=image_size)
    assert isinstance(ds, HpmlDataset) and ds.synthetic and ds.split == split and ds.info == info
    assert len(ds) == 5
    x, y = ds[4]
    assert isinstance(y, int) and 0 <= y < info.num_classes
    if info.modality == "image":
        side = image_size or info.image_size
        assert x.shape == (3, side, side) and x.dtype == torch.float32
        assert ds.augment == (split == "train")
    else:
        assert x.shape == (info.seq_len,) and x.dtype == torch.int64
        assert 0 <= int(x.min()) and int(x.max()) < ds.vocab_size
        assert int(x[0]) == ds.pad_id or len(set(x.tolist())) > 1


@pytest.mark.parametrize("name", list_datasets())
def test_twin_default_size_is_the_real_split_size(name: str) -> None:
    info = dataset_info(name)
    assert len(create_dataset(name, "test", synthetic=True, image_size=32)) == info.test_size


def test_default_source_is_the_twin_without_data_dir() -> None:
    assert create_dataset("cifar10", "test", size=2).synthetic


def test_digits_is_real_by_default_and_twin_on_request() -> None:
    assert not create_dataset("digits", "test").synthetic
    assert not create_dataset("digits", "test", synthetic=False).synthetic
    assert create_dataset("digits", "test", synthetic=True).synthetic


def test_registry_entry_is_a_factory() -> None:
    ds = DATASETS.get("cifar100")("test", size=3)
    assert ds.info.name == "cifar100" and len(ds) == 3


def test_unknown_dataset_lists_registered_names() -> None:
    with pytest.raises(HpmlError, match="unknown dataset 'mnist'; registered: .*cifar10.*digits"):
        create_dataset("mnist")
    with pytest.raises(HpmlError, match="registered"):
        dataset_info("mnist")


def test_bad_split_lists_allowed() -> None:
    with pytest.raises(HpmlError, match="unknown split 'val'; choose from train, test"):
        create_dataset("cifar10", "val")


def test_real_without_data_dir_names_files_and_source() -> None:
    with pytest.raises(HpmlError, match=r"cifar-10-batches-py/.*data_batch.*https://www\.cs\.toronto\.edu"):
        create_dataset("cifar10", synthetic=False)


@pytest.mark.parametrize("name", sorted(REQUIRED - {"digits"}))
def test_missing_data_dir_names_expected_layout(name: str, tmp_path: Path) -> None:
    info = dataset_info(name)
    for where in (tmp_path / "nope", tmp_path):  # absent directory; directory without the files
        with pytest.raises(HpmlError) as err:
            create_dataset(name, "train", data_dir=where)
        message = str(err.value)
        assert info.files in message and info.source in message and "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(size=0), "size must be >= 1"),
        (dict(image_size=4), "image_size must be >= 8"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(HpmlError, match=match):
        create_dataset("cifar10", **kwargs)


def test_bad_seq_len() -> None:
    with pytest.raises(HpmlError, match="seq_len must be >= 3"):
        create_dataset("amazon_polarity", seq_len=2)


def test_augment_override() -> None:
    assert create_dataset("cifar10", "train", size=1, augment=False).augment is False
    assert create_dataset("cifar10", "test", size=1, augment=True).augment is True
