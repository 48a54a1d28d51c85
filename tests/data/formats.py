"""Writers for tiny files in the exact formats the real dataset distributions use."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_TRAIN_PER_BATCH = 2  # images per data_batch_k (5 batches)
CIFAR_TEST = 3
WNIDS = ["n01440764", "n01443537", "n01484850"]  # the first three ImageNet classes
AMAZON_ROWS = [
    ("2", "Great stuff", "Works as advertised, would buy again."),
    ("1", "Broken", 'Arrived broken; the "support" never answered.'),
    ("2", "Love it", "My kids love it, sturdy and fun."),
    ("1", "Waste of money", "Stopped working after a week."),
    ("2", "Solid", "Good value, fast shipping, nice box."),
    ("1", "Meh, then worse", "Cheap plastic, returned it, refund took a month."),
]


def random_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], label_keys: tuple[bytes, ...]) -> None:
    """A batch as the CIFAR tarballs hold it: protocol-2 pickle, bytes keys, uint8 [N, 3072]."""
    batch: dict[bytes, object] = {
        b"batch_label": b"hpml test batch",
        b"data": images.reshape(len(images), -1),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    for key in label_keys:
        batch[key] = list(labels)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_jpeg(path: Path, width: int, height: int, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def write_amazon_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    """As the Zhang et al. CSVs: no header, every field quoted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
