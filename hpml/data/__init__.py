"""Dataset registry: ``create_dataset``, ``dataset_info``, ``list_datasets``.

Every dataset has a real on-disk form (README, Data) and a synthetic twin of the same shapes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hpml.data.base import (
    DataRequest,
    DatasetInfo,
    HpmlDataset,
    ImageTransform,
    TextDataset,
    check_split,
)
from hpml.data.tokenizer import Tokenizer
from hpml.errors import HpmlError
from hpml.registry import Registry

#: Reads the real files for one split.
RealLoader = Callable[[DataRequest], HpmlDataset]
#: Builds a split's image transform: (info, augment, output side px) -> transform.
TransformFactory = Callable[[DatasetInfo, bool, int], ImageTransform]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its info, real-data reader and (images) transform recipe."""

    info: DatasetInfo
    load: RealLoader
    transform: TransformFactory | None = None  # None for text
    bundled: bool = False  # real data ships with a package (digits): no data_dir needed
    # e.g. "uint8 3x32x32 in memory": equal storage, recipe and flip rule mean equal per-sample
    # work, so the data phases measure such datasets once (hpml.bench.skips.workload_twin)
    storage: str | None = None

    def __call__(self, split: str = "train", **kwargs: object) -> HpmlDataset:
        return create_dataset(self.info.name, split, **kwargs)  # type: ignore[arg-type]


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(
    info: DatasetInfo, *, transform: TransformFactory | None = None, bundled: bool = False,
    storage: str | None = None,
) -> Callable[[RealLoader], RealLoader]:
    """Decorator registering a real-data reader under ``info.name``; the twin comes for free."""
    if info.modality not in ("image", "text"):
        raise HpmlError(f"dataset {info.name!r}: modality {info.modality!r}; choose from image, text")
    if info.modality == "image" and transform is None:
        raise HpmlError(f"image dataset {info.name!r} needs a transform factory")

    def add(load: RealLoader) -> RealLoader:
        DATASETS.add(info.name, DatasetEntry(info, load, transform, bundled, storage))
        return load

    return add


def dataset_info(name: str) -> DatasetInfo:
    from hpml.plugins import load_plugins

    load_plugins()  # datasets registered by installed packages (entry points)
    return DATASETS.get(name).info


def list_datasets() -> list[str]:
    from hpml.plugins import load_plugins

    load_plugins()
    return DATASETS.names()


def create_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | Path | None = None,
    synthetic: bool | None = None,
    size: int | None = None,
    seed: int = 0,
    augment: bool | None = None,
    image_size: int | None = None,
    seq_len: int | None = None,
    tokenizer: Tokenizer | str | Path | None = None,
) -> HpmlDataset:
    """One split of dataset ``name``: the twin when ``synthetic`` or (``None``) without ``data_dir``, else the real files.

    ``size`` is the twin's length or a leading real subset (ImageNet: evenly spaced); ``tokenizer`` defaults to one fitted on the training text."""
    entry = DATASETS.get(name)
    info = entry.info
    check_split(split)
    if size is not None and size < 1:
        raise HpmlError(f"size must be >= 1 (samples), got {size}")
    if synthetic is None:
        synthetic = data_dir is None and not entry.bundled
    if not synthetic and data_dir is None and not entry.bundled:
        raise HpmlError(
            f"{name}: synthetic=False needs data_dir holding {info.files} (from {info.source})"
        )
    augment = split == "train" if augment is None else augment

    if info.modality == "image":
        side = image_size if image_size is not None else info.image_size
        if side < 8:
            raise HpmlError(f"image_size must be >= 8 (px), got {side}")
        assert entry.transform is not None
        transform = entry.transform(info, augment, side)
        if synthetic:
            from hpml.data.synthetic import SyntheticImages

            n = size if size is not None else info.split_size(split)
            return SyntheticImages(
                info, split, size=n, seed=seed, augment=augment, transform=transform, image_size=side
            )
        return entry.load(_request(info, split, data_dir, size, augment, side, 0, transform, None))

    length = seq_len if seq_len is not None else info.seq_len
    if length < 3:
        raise HpmlError(f"seq_len must be >= 3 (tokens), got {length}")
    tok = Tokenizer.from_file(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    if synthetic:
        from hpml.data.synthetic import synthetic_text

        n = size if size is not None else info.split_size(split)
        return synthetic_text(info, split, size=n, seed=seed, seq_len=length, tokenizer=tok)
    return entry.load(_request(info, split, data_dir, size, False, 0, length, None, tok))


def _request(
    info: DatasetInfo,
    split: str,
    data_dir: str | Path | None,
    size: int | None,
    augment: bool,
    image_size: int,
    seq_len: int,
    transform: ImageTransform | None,
    tokenizer: Tokenizer | None,
) -> DataRequest:
    path = Path(data_dir if data_dir is not None else ".").expanduser()
    return DataRequest(info, split, path, size, augment, image_size, seq_len, transform, tokenizer)


# Importing the family modules registers their datasets (in list_datasets() order).
from hpml.data import cifar, imagenet, amazon, digits  # noqa: E402,F401,I001

__all__ = [
    "DATASETS",
    "DatasetEntry",
    "DatasetInfo",
    "HpmlDataset",
    "TextDataset",
    "Tokenizer",
    "create_dataset",
    "dataset_info",
    "list_datasets",
    "register_dataset",
]
