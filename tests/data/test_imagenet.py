"""ImageNet read from torchvision's extracted folder layout with real JPEGs and meta.bin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpml.data import create_dataset
from hpml.data.formats import noise_images, write_jpeg
from hpml.data.imagenet import load_meta
from hpml.errors import HpmlError

from .samples import WNIDS

SIDE = 32  # px; small output side so the tests stay cheap


def test_splits_and_labels(imagenet_dir: Path) -> None:
    train = create_dataset("imagenet", "train", data_dir=imagenet_dir, image_size=SIDE)
    test = create_dataset("imagenet", "test", data_dir=imagenet_dir, image_size=SIDE)
    assert len(train) == 6 and len(test) == 3 and not train.synthetic
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2] and test.labels.tolist() == [0, 1, 2]
    for ds in (train, test):
        x, y = ds[len(ds) - 1]
        assert x.shape == (3, SIDE, SIDE) and x.dtype == torch.float32 and y == 2


def test_meta_bin_loads_with_weights_only(imagenet_dir: Path) -> None:
    classes, val_wnids = load_meta(imagenet_dir / "imagenet" / "meta.bin")
    assert sorted(classes) == WNIDS and classes[WNIDS[0]] == (f"class {WNIDS[0]}",) and val_wnids == WNIDS


def test_labels_follow_meta_bin_wnids(imagenet_dir: Path) -> None:
    """A subset tree keeps the class indices of the full wnid list in meta.bin."""
    full = ["n00000001", *WNIDS]
    torch.save(({w: (w,) for w in full}, []), imagenet_dir / "imagenet" / "meta.bin")
    ds = create_dataset("imagenet", "test", data_dir=imagenet_dir, image_size=SIDE)
    assert ds.labels.tolist() == [1, 2, 3]


def test_without_meta_bin_labels_index_sorted_folders(imagenet_dir: Path) -> None:
    (imagenet_dir / "imagenet" / "meta.bin").unlink()
    ds = create_dataset("imagenet", "test", data_dir=imagenet_dir / "imagenet", image_size=SIDE)
    assert ds.labels.tolist() == [0, 1, 2]


def test_default_transforms_at_224(imagenet_dir: Path) -> None:
    train = create_dataset("imagenet", "train", data_dir=imagenet_dir)
    test = create_dataset("imagenet", "test", data_dir=imagenet_dir)
    assert train[0][0].shape == test[0][0].shape == (3, 224, 224)
    assert train.augment and not test.augment


def test_size_is_spread_over_classes(imagenet_dir: Path) -> None:
    ds = create_dataset("imagenet", "train", data_dir=imagenet_dir, size=3, image_size=SIDE)
    assert ds.labels.tolist() == [0, 1, 2]
    with pytest.raises(HpmlError, match="size=7 exceeds the 6 images"):
        create_dataset("imagenet", "train", data_dir=imagenet_dir, size=7)


def test_arrays_is_refused(imagenet_dir: Path) -> None:
    ds = create_dataset("imagenet", "test", data_dir=imagenet_dir, image_size=SIDE)
    with pytest.raises(HpmlError, match="decoded per sample"):
        ds.arrays()


def test_corrupt_jpeg_names_file(imagenet_dir: Path) -> None:
    bad = imagenet_dir / "imagenet" / "val" / WNIDS[1] / f"{WNIDS[1]}_0.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = create_dataset("imagenet", "test", data_dir=imagenet_dir, image_size=SIDE)
    ds[0]
    with pytest.raises(HpmlError, match=f"cannot decode image {bad}"):
        ds[1]


def test_corrupt_meta_bin_names_file(imagenet_dir: Path) -> None:
    meta = imagenet_dir / "imagenet" / "meta.bin"
    meta.write_bytes(meta.read_bytes()[:40])
    with pytest.raises(HpmlError, match=f"corrupt ImageNet meta file {meta}"):
        create_dataset("imagenet", "train", data_dir=imagenet_dir)


def test_folder_not_in_meta_bin(imagenet_dir: Path) -> None:
    folder = imagenet_dir / "imagenet" / "train" / "n99999999"
    folder.mkdir()
    write_jpeg(folder / "x.JPEG", noise_images(1, 8, 8, seed=0)[0])
    with pytest.raises(HpmlError, match="n99999999 is not a class listed in .*meta.bin"):
        create_dataset("imagenet", "train", data_dir=imagenet_dir)


def test_missing_val_folder_names_layout(imagenet_dir: Path) -> None:
    import shutil

    shutil.rmtree(imagenet_dir / "imagenet" / "val")
    with pytest.raises(HpmlError, match=r"expected imagenet/\{train,val\}/<wnid>/\*\.JPEG.*image-net\.org"):
        create_dataset("imagenet", "test", data_dir=imagenet_dir)


def test_empty_class_folders_names_layout(tmp_path: Path) -> None:
    (tmp_path / "imagenet" / "train" / WNIDS[0]).mkdir(parents=True)
    with pytest.raises(HpmlError, match=r"no images in .*train/<wnid>/"):
        create_dataset("imagenet", "train", data_dir=tmp_path)
