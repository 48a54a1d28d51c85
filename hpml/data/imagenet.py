"""ImageNet-1k in torchvision's extracted layout (``imagenet/{train,val}/<wnid>/*.JPEG``), decoded per sample.

Labels index the sorted wnids of ``meta.bin`` when present (a subset keeps the real indices), else of the
folders found. Paths live in one numpy bytes array: compact, and not copied into forked workers."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image

from hpml.data import register_dataset
from hpml.measure.io import read_dataset_file
from hpml.data.base import (
    DataRequest,
    DatasetInfo,
    ImageDataset,
    ImageTransform,
    find_root,
    missing_data,
)
from hpml.data.transforms import imagenet_transform
from hpml.errors import HpmlError, squeezed_message
from hpml.files import os_error

IMAGENET = DatasetInfo(
    name="imagenet",
    modality="image",
    num_classes=1000,
    model="resnet50",
    train_size=1_281_167,
    test_size=50_000,
    image_size=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    files="imagenet/{train,val}/<wnid>/*.JPEG (+ imagenet/meta.bin), "
    "as torchvision.datasets.ImageNet extracts it",
    source="https://image-net.org/challenges/LSVRC/2012/2012-downloads.php "
    "(then torchvision.datasets.ImageNet(root, split='train'/'val') to extract)",
)

_FOLDERS = {"train": "train", "test": "val"}
_EXTENSIONS = (".jpeg", ".jpg", ".png")  # ImageNet has one PNG named .JPEG; decode_image sniffs


def load_meta(path: Path) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """``(wnid_to_classes, val_wnids)`` from torchvision's ``meta.bin``."""
    try:
        meta = torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises retrying with weights_only=False: that would run the
        # file's code, so it is not quoted.
        raise HpmlError(f"corrupt ImageNet meta file {path}: it holds objects other than a dict and a "
                        "list of strings (not torchvision's meta.bin); not loading it") from None
    except Exception as err:  # pickle/zip errors come in many types
        raise HpmlError(f"corrupt ImageNet meta file {path}: {squeezed_message(err)}") from None
    shape_ok = isinstance(meta, (tuple, list)) and len(meta) == 2 and isinstance(meta[0], dict) \
        and isinstance(meta[1], (list, tuple)) and all(isinstance(k, str) for k in meta[0]) \
        and all(isinstance(w, str) for w in meta[1])
    if not shape_ok:
        raise HpmlError(f"corrupt ImageNet meta file {path}: expected (wnid_to_classes dict with string keys, "
                        "val_wnids list of strings)")
    return meta[0], list(meta[1])


def _wnids(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(e.name for e in os.scandir(folder) if e.is_dir())


def _images(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.name.lower().endswith(_EXTENSIONS) and e.is_file())


def decode(path: str) -> Tensor:
    """uint8 ``[3, H, W]`` RGB (grayscale and CMYK JPEGs are converted)."""
    try:
        # Read with read(), not decode_image(path)'s memory map, so the I/O counters
        # (and hpml's dataset-bytes count) see the file.
        data = read_dataset_file(path)
        return decode_image(torch.frombuffer(data, dtype=torch.uint8), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError, OSError) as err:
        raise HpmlError(f"cannot decode image {path}: {squeezed_message(err)}") from None


class ImageFolderDataset(ImageDataset):
    """Image files decoded on access; ``arrays()`` is refused (the set does not fit in memory)."""

    def __init__(
        self, paths: np.ndarray, labels: Tensor, info: DatasetInfo, split: str, **kwargs: object
    ) -> None:
        super().__init__(info, split, **kwargs)  # type: ignore[arg-type]
        self.paths = paths  # numpy bytes array, one encoded path per sample
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, index: int) -> tuple[Tensor, int]:
        return decode(os.fsdecode(self.paths[index])), int(self.labels[index])


def scan(root: Path, split: str, info: DatasetInfo) -> tuple[list[str], list[int]]:
    """Files of ``split`` and their labels in sorted order; an unreadable folder is an HpmlError naming it."""
    try:
        return _scan(root, split, info)
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        raise HpmlError(f"cannot read the ImageNet tree under {root}: {where}{os_error(err)}") from None


def _scan(root: Path, split: str, info: DatasetInfo) -> tuple[list[str], list[int]]:
    meta_file = root / "meta.bin"
    if meta_file.is_file():
        classes = sorted(load_meta(meta_file)[0])
    else:
        classes = sorted(set(_wnids(root / "train")) | set(_wnids(root / "val")))
    index = {wnid: i for i, wnid in enumerate(classes)}
    folder = root / _FOLDERS[split]
    paths: list[str] = []
    labels: list[int] = []
    for wnid in _wnids(folder):
        if wnid not in index:
            raise HpmlError(f"ImageNet folder {folder / wnid} is not a class listed in {meta_file}")
        names = _images(folder / wnid)
        paths += [str(folder / wnid / n) for n in names]
        labels += [index[wnid]] * len(names)
    if not paths:
        raise missing_data(info, root, f"no images in {folder}/<wnid>/")
    return paths, labels


@register_dataset(IMAGENET, transform=imagenet_transform)
def imagenet(request: DataRequest) -> ImageFolderDataset:
    info = request.info
    folder = _FOLDERS[request.split]
    root = find_root(request.data_dir, "imagenet", lambda r: (r / folder).is_dir(), info)
    paths, labels = scan(root, request.split, info)
    keep = np.arange(len(paths))
    if request.size is not None:
        if request.size > len(paths):
            raise HpmlError(f"size={request.size} exceeds the {len(paths)} images in {root / folder}")
        # files are sorted by class, so take an evenly spaced subset rather than the first classes
        keep = np.arange(request.size) * len(paths) // request.size
    transform: ImageTransform | None = request.transform
    assert transform is not None
    return ImageFolderDataset(
        np.array([os.fsencode(paths[i]) for i in keep]),
        torch.tensor([labels[i] for i in keep], dtype=torch.int64),
        info,
        request.split,
        synthetic=False,
        augment=request.augment,
        transform=transform,
        image_size=request.image_size,
    )
