"""Writers of small datasets in the real on-disk formats, so benchmarks without ``--data-dir`` and the
data tests still go through the real readers (README, Data, lists the layouts).

Images are smooth colour fields, not white noise: JPEG decode time depends on content."""

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
from hpml.data.tokenizer import train_tokenizer

CIFAR_TRAIN_FILES = 5  # data_batch_1..5
IMAGENET_CLASSES = 4  # wnid folders written (labels index the sorted wnids of meta.bin)
JPEG_QUALITY = 90
TEST_SAMPLES = 8  # per test split: the benchmarks read only train splits
WNIDS = [f"n{1440764 + 1000 * i:08d}" for i in range(IMAGENET_CLASSES)]
#: The tokenizer written next to the Amazon CSVs.
TOKENIZER_FILE = "spiece.model"
AMAZON_FOLDERS = {"amazon_polarity": "amazon_review_polarity_csv", "amazon_full": "amazon_review_full_csv"}


def noise_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 ``[n, 3, height, width]`` of uniform noise (exact values a test can compare)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, height, width), dtype=np.uint8)


def smooth_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 ``[n, 3, height, width]``: upsampled random colour fields + mild noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, max(1, height // 16), max(1, width // 16), generator=g) * 255
    images = F.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    images = images + 8.0 * torch.randn(n, 3, height, width, generator=g)
    return images.clamp_(0, 255).round_().to(torch.uint8).numpy()


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], label_keys: tuple[bytes, ...]) -> None:
    """A batch as the CIFAR tarballs hold it: protocol-2 pickle, bytes keys, uint8 [N, 3072]."""
    batch: dict[bytes, object] = {
        b"batch_label": b"hpml batch",
        b"data": np.ascontiguousarray(images.reshape(len(images), -1)),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    for key in label_keys:
        batch[key] = list(labels)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_jpeg(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """One uint8 ``[3, height, width]`` image as a JPEG file."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(path, format="JPEG", quality=quality)


def write_amazon_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    """As the Zhang et al. CSVs: (1-based class, title, text), no header, every field quoted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)


def write_cifar10(root: Path, n_train: int, seed: int = 0) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_file = math.ceil(n_train / CIFAR_TRAIN_FILES)
    rng = np.random.default_rng(seed)
    for k in range(1, CIFAR_TRAIN_FILES + 1):
        images = smooth_images(per_file, 32, 32, seed + k)
        write_cifar_batch(folder / f"data_batch_{k}", images, rng.integers(0, 10, per_file).tolist(), (b"labels",))
    test = smooth_images(TEST_SAMPLES, 32, 32, seed)
    write_cifar_batch(folder / "test_batch", test, rng.integers(0, 10, TEST_SAMPLES).tolist(), (b"labels",))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_file, b"num_vis": 3072}, f, protocol=2)


def write_cifar100(root: Path, n_train: int, seed: int = 0) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keys = (b"fine_labels", b"coarse_labels")
    for split, n in (("train", n_train), ("test", TEST_SAMPLES)):
        write_cifar_batch(folder / split, smooth_images(n, 32, 32, seed + n), rng.integers(0, 100, n).tolist(), keys)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"c%d" % i for i in range(100)]}, f, protocol=2)


def write_imagenet_meta(folder: Path, wnids: list[str]) -> None:
    """``meta.bin`` as torchvision writes it: (wnid -> class names, the val images' wnids)."""
    classes = {wnid: (f"class {wnid}",) for wnid in wnids}
    torch.save((classes, list(wnids)), folder / "meta.bin")


def write_imagenet(root: Path, n_train: int, size: tuple[int, int], seed: int = 0) -> None:
    """torchvision's extracted layout, ``n_train`` JPEGs of ``size`` = (width, height) px."""
    folder = root / "imagenet"
    width, height = size
    for split, n in (("train", n_train), ("val", TEST_SAMPLES)):
        per_class = math.ceil(n / IMAGENET_CLASSES)
        for c, wnid in enumerate(WNIDS):
            out = folder / split / wnid
            out.mkdir(parents=True, exist_ok=True)
            images = smooth_images(per_class, height, width, seed + 1000 * c + (split == "val"))
            for i, image in enumerate(images):
                write_jpeg(out / f"{wnid}_{i}.JPEG", image)
    write_imagenet_meta(folder, WNIDS)


def write_amazon(root: Path, name: str, n_train: int, seed: int = 0) -> None:
    """Zhang et al.'s CSV layout (1-based class, title, text) + a tokenizer trained on it."""
    info = dataset_info(name)
    folder = root / AMAZON_FOLDERS[name]
    texts = []
    for split, n in (("train", n_train), ("test", TEST_SAMPLES)):
        reviews = SyntheticReviews(info.num_classes, split, n, seed)
        rows = []
        for i in range(n):
            title, _, body = reviews.text(i).partition(" ")  # first word as title, like a short headline
            rows.append((str(reviews.label(i) + 1), title, body))
            texts.append(reviews.text(i))
        write_amazon_csv(folder / f"{split}.csv", rows)
    (folder / TOKENIZER_FILE).write_bytes(train_tokenizer(texts))
