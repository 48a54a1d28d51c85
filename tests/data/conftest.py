"""Fixtures writing tiny datasets in the exact formats the real distributions use.

Every fixture returns a ``data_dir`` to pass to ``create_dataset``; the files go through
the same reading code as the real downloads.  Trained tokenizers and HF arrow caches go
to a per-session temporary ``HPML_CACHE_DIR``, never to the user's home.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Iterator

import pytest
import torch

from hpml.data.formats import noise_images, write_amazon_csv, write_cifar_batch, write_imagenet_meta, write_jpeg

from .samples import AMAZON_ROWS, CIFAR_TEST, CIFAR_TRAIN_PER_BATCH, WNIDS


@pytest.fixture(scope="session", autouse=True)
def hpml_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("hpml-cache")
    old = os.environ.get("HPML_CACHE_DIR")
    os.environ["HPML_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["HPML_CACHE_DIR"]
    else:
        os.environ["HPML_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def few_threads() -> Iterator[None]:
    """The test machine has 2 shared cores; intra-op threads only add contention here."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for k in range(1, 6):
        labels = [(2 * k + i) % 10 for i in range(CIFAR_TRAIN_PER_BATCH)]
        write_cifar_batch(root / f"data_batch_{k}", noise_images(CIFAR_TRAIN_PER_BATCH, 32, 32, k), labels, (b"labels",))
    write_cifar_batch(root / "test_batch", noise_images(CIFAR_TEST, 32, 32, 0), [3, 1, 4], (b"labels",))
    with open(root / "batches.meta", "wb") as f:
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, protocol=2)
    return tmp_path


@pytest.fixture
def cifar100_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    keys = (b"fine_labels", b"coarse_labels")
    write_cifar_batch(root / "train", noise_images(4, 32, 32, 7), [99, 0, 42, 7], keys)
    write_cifar_batch(root / "test", noise_images(2, 32, 32, 8), [5, 98], keys)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"c%d" % i for i in range(100)]}, f, protocol=2)
    return tmp_path


@pytest.fixture
def imagenet_dir(tmp_path: Path) -> Path:
    """torchvision's extracted layout: 3 wnids, 2 train and 1 val JPEG each, plus meta.bin."""
    root = tmp_path / "imagenet"
    for split, per_class in (("train", 2), ("val", 1)):
        for c, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                image = noise_images(1, 30 + 4 * c, 40 + 8 * i, seed=10 * c + i)[0]  # 40+ x 30+ px
                write_jpeg(folder / f"{wnid}_{i}.JPEG", image)
    # what torchvision's parse_devkit_archive saves: ({wnid: (class names,)}, [val wnid per image])
    write_imagenet_meta(root, WNIDS)
    return tmp_path


@pytest.fixture
def amazon_csv_dir(tmp_path: Path) -> Path:
    root = tmp_path / "amazon_review_polarity_csv"
    write_amazon_csv(root / "train.csv", AMAZON_ROWS)
    write_amazon_csv(root / "test.csv", AMAZON_ROWS[:3])
    return tmp_path


@pytest.fixture
def amazon_parquet_dir(tmp_path: Path) -> Path:
    """The HF Hub copy's layout: label 0..N-1, title, content, one parquet shard per split."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "amazon_polarity"
    root.mkdir()
    for split, rows in (("train", AMAZON_ROWS), ("test", AMAZON_ROWS[3:])):
        table = pa.table(
            {
                "label": [int(r[0]) - 1 for r in rows],
                "title": [r[1] for r in rows],
                "content": [r[2] for r in rows],
            }
        )
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    return tmp_path
