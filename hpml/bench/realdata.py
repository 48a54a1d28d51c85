"""Small datasets in the real on-disk formats, for benchmark rows that read real files.

Without ``--data-dir`` the loading, pre-processing and end-to-end rows still go through
the real readers (pickle unpickling, JPEG decoding, CSV parsing, SentencePiece
tokenization), on files written here once per pytest session into a temporary
directory.  Sizes follow the profile: just enough samples for one measured call.

Layouts are exactly those :mod:`hpml.data` reads (see each family's docstring):

* ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
  ``cifar-100-python/{train,test,meta}``: protocol-2 pickles, uint8 ``[N, 3072]``;
* ``imagenet/{train,val}/<wnid>/*.JPEG`` + ``imagenet/meta.bin``;
* ``amazon_review_{polarity,full}_csv/{train,test}.csv``: no header, every field quoted,
  plus ``spiece.model``, a tokenizer trained on the written text.  Passing it explicitly
  keeps hpml's tokenizer cache (keyed by file path) free of one entry per session.

Image content is smooth colour fields with mild noise, not white noise: JPEG decode
time depends on content, and noise compresses (and decodes) far worse than photos.
"""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hpml.data import dataset_info
from hpml.data.synthetic import SyntheticReviews
from hpml.data.tokenizer import Tokenizer, train_tokenizer

CIFAR_TRAIN_FILES = 5  # data_batch_1..5
IMAGENET_CLASSES = 4  # wnid folders written (labels index the sorted wnids of meta.bin)
JPEG_QUALITY = 90
TEST_SAMPLES = 8  # per test split: the benchmarks read only train splits
_WNIDS = [f"n{1440764 + 1000 * i:08d}" for i in range(IMAGENET_CLASSES)]
_TOKENIZER_FILE = "spiece.model"
_AMAZON_FOLDERS = {"amazon_polarity": "amazon_review_polarity_csv", "amazon_full": "amazon_review_full_csv"}


def smooth_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 ``[n, 3, height, width]``: upsampled random colour fields + mild noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, max(1, height // 16), max(1, width // 16), generator=g) * 255
    images = F.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    images = images + 8.0 * torch.randn(n, 3, height, width, generator=g)
    return images.clamp_(0, 255).round_().to(torch.uint8).numpy()


def _write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], label_keys: tuple[bytes, ...]) -> None:
    batch: dict[bytes, object] = {
        b"batch_label": b"hpml benchmark batch",
        b"data": np.ascontiguousarray(images.reshape(len(images), -1)),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    for key in label_keys:
        batch[key] = list(labels)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar10(root: Path, n_train: int, seed: int = 0) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_file = math.ceil(n_train / CIFAR_TRAIN_FILES)
    rng = np.random.default_rng(seed)
    for k in range(1, CIFAR_TRAIN_FILES + 1):
        images = smooth_images(per_file, 32, 32, seed + k)
        _write_cifar_batch(folder / f"data_batch_{k}", images, rng.integers(0, 10, per_file).tolist(), (b"labels",))
    test = smooth_images(TEST_SAMPLES, 32, 32, seed)
    _write_cifar_batch(folder / "test_batch", test, rng.integers(0, 10, TEST_SAMPLES).tolist(), (b"labels",))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_file, b"num_vis": 3072}, f, protocol=2)


def write_cifar100(root: Path, n_train: int, seed: int = 0) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keys = (b"fine_labels", b"coarse_labels")
    for split, n in (("train", n_train), ("test", TEST_SAMPLES)):
        _write_cifar_batch(folder / split, smooth_images(n, 32, 32, seed + n), rng.integers(0, 100, n).tolist(), keys)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"c%d" % i for i in range(100)]}, f, protocol=2)


def write_imagenet(root: Path, n_train: int, size: tuple[int, int], seed: int = 0) -> None:
    """torchvision's extracted layout, ``n_train`` JPEGs of ``size`` = (width, height) px."""
    from PIL import Image

    folder = root / "imagenet"
    width, height = size
    for split, n in (("train", n_train), ("val", TEST_SAMPLES)):
        per_class = math.ceil(n / IMAGENET_CLASSES)
        for c, wnid in enumerate(_WNIDS):
            out = folder / split / wnid
            out.mkdir(parents=True, exist_ok=True)
            images = smooth_images(per_class, height, width, seed + 1000 * c + (split == "val"))
            for i, image in enumerate(images):
                Image.fromarray(image.transpose(1, 2, 0)).save(
                    out / f"{wnid}_{i}.JPEG", format="JPEG", quality=JPEG_QUALITY
                )
    classes = {wnid: (f"class {wnid}",) for wnid in _WNIDS}
    torch.save((classes, list(_WNIDS)), folder / "meta.bin")


def write_amazon(root: Path, name: str, n_train: int, seed: int = 0) -> None:
    """Zhang et al.'s CSV layout (1-based class, title, text) + a tokenizer trained on it."""
    info = dataset_info(name)
    folder = root / _AMAZON_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    for split, n in (("train", n_train), ("test", TEST_SAMPLES)):
        reviews = SyntheticReviews(info.num_classes, split, n, seed)
        rows = []
        for i in range(n):
            title, _, body = reviews.text(i).partition(" ")  # first word as title, like a short headline
            rows.append((str(reviews.label(i) + 1), title, body))
            texts.append(reviews.text(i))
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    (folder / _TOKENIZER_FILE).write_bytes(train_tokenizer(texts))


WRITERS = {
    "cifar10": lambda root, n, p: write_cifar10(root, n, p.seed),
    "cifar100": lambda root, n, p: write_cifar100(root, n, p.seed),
    "imagenet": lambda root, n, p: write_imagenet(root, n, p.jpeg_size, p.seed),
    "amazon_polarity": lambda root, n, p: write_amazon(root, "amazon_polarity", n, p.seed),
    "amazon_full": lambda root, n, p: write_amazon(root, "amazon_full", n, p.seed),
}


class RealData:
    """Where each dataset's real files are: the user's ``--data-dir``, or small files
    written on first use into ``scratch`` (once per session and dataset)."""

    def __init__(self, data_dir: Path | None, scratch: Path, profile, samples: int) -> None:
        self.data_dir = data_dir
        self.scratch = scratch
        self.profile = profile
        self.samples = samples  # train samples to write per dataset (enough for one measured call)
        self._written: set[str] = set()

    @property
    def written(self) -> bool:
        """True when the files are benchmark-written stand-ins, not the user's data."""
        return self.data_dir is None

    def root(self, name: str) -> Path | None:
        """The data_dir to pass to ``create_dataset`` (None for bundled datasets like digits)."""
        if name not in WRITERS:  # bundled with a package (digits): no files needed
            return None
        if self.data_dir is not None:
            return self.data_dir
        if name not in self._written:
            WRITERS[name](self.scratch, self.samples, self.profile)
            self._written.add(name)
        return self.scratch

    def tokenizer(self, name: str) -> Tokenizer | None:
        """The tokenizer written with benchmark-made text files; None = hpml's default."""
        if self.data_dir is not None or dataset_info(name).modality != "text":
            return None
        root = self.root(name)
        assert root is not None
        return Tokenizer.from_file(root / _AMAZON_FOLDERS[name] / _TOKENIZER_FILE)
