"""The dataset object every loader consumes, and helpers shared by the families.

Augmentation draws from a generator the dataset owns (reseeded by the loaders), never torch's global RNG,
so the data pipeline cannot disturb model initialisation."""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from hpml.errors import HpmlError

if TYPE_CHECKING:
    import pyarrow as pa

    from hpml.data.tokenizer import Tokenizer

SPLITS: tuple[str, ...] = ("train", "test")

#: arrays() refuses to materialise more than this (bytes); pass ``size=`` for a subset.
ARRAYS_LIMIT_BYTES = 16 * 2**30


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: what the real files hold and how to find them."""

    name: str
    modality: str  # "image" or "text"
    num_classes: int
    model: str  # default model: "resnet50" for images, "xlnet" for text
    train_size: int  # samples in the REAL train split
    test_size: int  # samples in the REAL test split
    image_size: int = 0  # side of the square training input (px); 0 for text
    seq_len: int = 0  # default token sequence length (tokens); 0 for images
    mean: tuple[float, ...] = ()  # per-channel normalisation, on the 0..1 scale
    std: tuple[float, ...] = ()
    files: str = ""  # expected on-disk layout under data_dir (for error messages)
    source: str = ""  # where the real files come from (for error messages)
    hflip: bool = True  # whether a horizontal flip keeps the label (False for digits)

    def split_size(self, split: str) -> int:
        return self.train_size if split == "train" else self.test_size


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise HpmlError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return split


def cache_dir() -> Path:
    """Where hpml keeps derived files (trained tokenizers, HF arrow caches)."""
    return Path(os.environ.get("HPML_CACHE_DIR") or Path.home() / ".cache" / "hpml").expanduser()


def find_root(data_dir: Path, folder: str, is_root: Callable[[Path], bool], info: DatasetInfo) -> Path:
    """``data_dir/folder`` if ``is_root`` accepts it, else ``data_dir`` itself: --data-dir may name either."""
    if not data_dir.is_dir():
        raise missing_data(info, data_dir, "no such directory")
    for root in (data_dir / folder, data_dir):
        if is_root(root):
            return root
    raise missing_data(info, data_dir)


def missing_data(info: DatasetInfo, data_dir: Path, detail: str = "") -> HpmlError:
    what = f" ({detail})" if detail else ""
    return HpmlError(
        f"{info.name} not found under {data_dir}{what}: expected {info.files}; get it from {info.source}"
    )


def take_first(n_available: int, size: int | None, where: object) -> int:
    """How many leading samples to keep: all of them, or exactly ``size``."""
    if size is None:
        return n_available
    if size > n_available:
        raise HpmlError(f"size={size} exceeds the {n_available} samples in {where}")
    return size


def check_arrays_fit(shape: Sequence[int], itemsize: int, name: str) -> None:
    nbytes = int(np.prod(shape)) * itemsize
    if nbytes > ARRAYS_LIMIT_BYTES:
        raise HpmlError(
            f"{name}: arrays() would need {nbytes / 2**30:.1f} GiB (shape {tuple(shape)}), over the "
            f"{ARRAYS_LIMIT_BYTES / 2**30:.0f} GiB limit; pass size= to take a subset"
        )


class HpmlDataset(Dataset):  # type: ignore[type-arg]
    """Base class: ``ds[i] -> (x, y)`` with ``y`` a python int; knows its info, split and whether it is a twin."""

    def __init__(self, info: DatasetInfo, split: str, *, synthetic: bool, augment: bool) -> None:
        self.info = info
        self.split = split
        self.synthetic = synthetic
        self.augment = augment
        self._rng = torch.Generator()
        self._rng.manual_seed(0)

    def seed_augmentation(self, seed: int) -> None:
        """Reseed the per-dataset augmentation generator (the loaders call this per worker)."""
        self._rng.manual_seed(seed)

    # A torch.Generator kills a spawned/forkserver worker (rebuild_storage_fd): it is left out
    # of the pickle and rebuilt there, then reseeded by the loader's worker_init_fn.
    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_rng", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._rng = torch.Generator()
        self._rng.manual_seed(0)

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        raise NotImplementedError

    def arrays(self) -> tuple[Tensor, Tensor]:
        """The whole split as tensors for the device-resident loader (see subclasses)."""
        raise HpmlError(f"{self.info.name} ({self.split}) is decoded per sample and has no arrays()")

    def __repr__(self) -> str:
        kind = "synthetic" if self.synthetic else "real"
        return f"{type(self).__name__}({self.info.name}, {self.split}, {kind}, n={len(self)})"


def _check_index(index: int, n: int) -> int:
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index {index} out of range for {n} samples")
    return index


class ImageTransform(Protocol):
    """uint8 ``[3, H, W]`` -> normalised float32 ``[3, S, S]``, randomness from ``rng``."""

    def __call__(self, image: Tensor, rng: torch.Generator) -> Tensor: ...


class ImageDataset(HpmlDataset):
    """An image split: subclasses provide the native uint8 sample; this applies the transform."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        *,
        synthetic: bool,
        augment: bool,
        transform: ImageTransform,
        image_size: int,
    ) -> None:
        super().__init__(info, split, synthetic=synthetic, augment=augment)
        self.transform = transform
        self.image_size = image_size  # output side (px)

    def sample(self, index: int) -> tuple[Tensor, int]:
        """Native ``(uint8[3, H, W], label)`` before any transform."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.sample(_check_index(index, len(self)))
        return self.transform(image, self._rng), label


class TensorImageDataset(ImageDataset):
    """Images held in memory as one uint8 ``[N, 3, S, S]`` tensor (CIFAR, digits)."""

    def __init__(
        self, images: Tensor, labels: Tensor, info: DatasetInfo, split: str, **kwargs: object
    ) -> None:
        super().__init__(info, split, **kwargs)  # type: ignore[arg-type]
        assert images.dtype == torch.uint8 and images.ndim == 4 and labels.dtype == torch.int64
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[Tensor, Tensor]:
        return self.images, self.labels


class TextSource(Protocol):
    """Random access to the raw review strings and their labels."""

    def __len__(self) -> int: ...

    def text(self, index: int) -> str: ...

    def label(self, index: int) -> int: ...


class TextDataset(HpmlDataset):
    """Reviews tokenised per sample in ``__getitem__`` (the text pre-processing cost), left-padded ids."""

    def __init__(
        self,
        source: TextSource,
        info: DatasetInfo,
        split: str,
        *,
        synthetic: bool,
        tokenizer: Tokenizer,
        seq_len: int,
    ) -> None:
        super().__init__(info, split, synthetic=synthetic, augment=False)
        self.source = source
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.pad_id = tokenizer.pad_id
        self.vocab_size = tokenizer.vocab_size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        index = _check_index(index, len(self))
        ids = self.tokenizer.encode(self.source.text(index), self.seq_len)
        return torch.tensor(ids, dtype=torch.int64), self.source.label(index)

    def arrays(self) -> tuple[Tensor, Tensor]:
        """All samples tokenised at once: ``(int64[N, seq_len], int64[N])``."""
        n = len(self)
        check_arrays_fit((n, self.seq_len), 8, self.info.name)
        ids = self.tokenizer.encode_batch([self.source.text(i) for i in range(n)], self.seq_len)
        labels = torch.tensor([self.source.label(i) for i in range(n)], dtype=torch.int64)
        return ids, labels


class StringColumn:
    """Random access into a chunked arrow string column: compact, and not copied page by page into
    forked workers by reference counting as Python strings would be."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.chunks = [c for c in column.chunks if len(c)]
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks]).tolist()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int) -> str:
        k = bisect.bisect_right(self.starts, index) - 1
        value = self.chunks[k][index - self.starts[k]].as_py()
        return value if value is not None else ""


@dataclass(frozen=True)
class DataRequest:
    """Everything a family's real-data loader needs, resolved by :func:`hpml.data.create_dataset`."""

    info: DatasetInfo
    split: str
    data_dir: Path
    size: int | None
    augment: bool
    image_size: int
    seq_len: int
    transform: ImageTransform | None  # images only
    tokenizer: Tokenizer | None  # text only; None -> train/reuse the default one
