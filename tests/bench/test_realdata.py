"""Benchmark-written files go through hpml's real readers (the formats are right)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hpml.bench.profiles import get_profile
from hpml.bench.realdata import RealData
from hpml.data import create_dataset, dataset_info

PROFILE = dataclasses.replace(get_profile("smoke"), name="tiny-test", jpeg_size=(48, 40))


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "imagenet", "amazon_polarity", "amazon_full"])
def test_written_files_read_back_as_real_data(name: str, tmp_path: Path):
    real = RealData(None, tmp_path / "data", PROFILE, samples=10)
    info = dataset_info(name)
    ds = create_dataset(
        name, "train", synthetic=False, data_dir=real.root(name), tokenizer=real.tokenizer(name),
        size=10, image_size=PROFILE.image_size(info), seq_len=PROFILE.sequence_length(info),
    )
    assert len(ds) == 10 and not ds.synthetic
    x, y = ds[0]
    assert 0 <= y < info.num_classes
    if info.modality == "image":
        side = PROFILE.image_size(info)
        assert x.shape == (3, side, side) and x.dtype == torch.float32
    else:
        assert x.shape == (PROFILE.seq_len,) and x.dtype == torch.int64


def test_files_are_written_once_and_user_data_is_never_written(tmp_path: Path):
    real = RealData(None, tmp_path / "data", PROFILE, samples=5)
    root = real.root("cifar10")
    stamp = (root / "cifar-10-batches-py" / "data_batch_1").stat().st_mtime_ns
    assert real.root("cifar10") == root
    assert (root / "cifar-10-batches-py" / "data_batch_1").stat().st_mtime_ns == stamp
    assert real.root("digits") is None  # bundled with scikit-learn

    user = RealData(tmp_path / "mine", tmp_path / "scratch", PROFILE, samples=5)
    assert user.root("imagenet") == tmp_path / "mine" and user.tokenizer("amazon_full") is None
    assert not (tmp_path / "mine").exists() and not (tmp_path / "scratch").exists()
