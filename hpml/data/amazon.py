"""Amazon review polarity (2 classes) and full (5), from the original CSVs or the Hub copy's files.

A sample is ``title + " " + text``. The CSV is parsed with pyarrow; a file it rejects, and any ``size=``,
goes through Python's ``csv``, which names the bad line."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import torch

from hpml.data import register_dataset
from hpml.data.base import (
    DataRequest,
    DatasetInfo,
    StringColumn,
    TextDataset,
    cache_dir,
    missing_data,
)
from hpml.data.tokenizer import TRAIN_SAMPLE, Tokenizer, trained_tokenizer
from hpml.errors import HpmlError, squeezed_message
from hpml.files import os_error

_SEQ_LEN = 256  # tokens; covers ~90% of reviews (median ~80 words)

AMAZON_POLARITY = DatasetInfo(
    name="amazon_polarity",
    modality="text",
    num_classes=2,
    model="xlnet",
    train_size=3_600_000,
    test_size=400_000,
    seq_len=_SEQ_LEN,
    files="amazon_review_polarity_csv/{train,test}.csv or amazon_polarity/*{train,test}*.parquet|json|jsonl",
    source="the amazon_review_polarity_csv.tgz of Zhang et al. 2015 (fast.ai mirror: "
    "https://s3.amazonaws.com/fast-ai-nlp/amazon_review_polarity_csv.tgz) or the HF Hub "
    "dataset amazon_polarity saved locally",
)
AMAZON_FULL = DatasetInfo(
    name="amazon_full",
    modality="text",
    num_classes=5,
    model="xlnet",
    train_size=3_000_000,
    test_size=650_000,
    seq_len=_SEQ_LEN,
    files="amazon_review_full_csv/{train,test}.csv or amazon_full/*{train,test}*.parquet|json|jsonl",
    source="the amazon_review_full_csv.tgz of Zhang et al. 2015 (fast.ai mirror: "
    "https://s3.amazonaws.com/fast-ai-nlp/amazon_review_full_csv.tgz) or an HF Hub copy saved locally",
)
_CSV_FOLDERS = {"amazon_polarity": "amazon_review_polarity_csv", "amazon_full": "amazon_review_full_csv"}
_HF_SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}


@dataclass(frozen=True)
class Reviews:
    """One split's columns: 0-based labels and the two string columns."""

    labels: np.ndarray  # int64 [N]
    title: pa.ChunkedArray
    body: pa.ChunkedArray

    def head(self, n: int) -> Reviews:
        return Reviews(self.labels[:n], self.title.slice(0, n), self.body.slice(0, n))


class ArrowReviews:
    """``TextSource`` over :class:`Reviews`; joins title and body per sample."""

    def __init__(self, reviews: Reviews) -> None:
        self.labels = reviews.labels
        self.title = StringColumn(reviews.title)
        self.body = StringColumn(reviews.body)

    def __len__(self) -> int:
        return len(self.labels)

    def text(self, index: int) -> str:
        return f"{self.title[index]} {self.body[index]}"

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def texts(self, n: int) -> Iterable[str]:
        return (self.text(i) for i in range(min(n, len(self))))


# -- CSV --------------------------------------------------------------------------------


def read_csv(path: Path, num_classes: int, limit: int | None = None) -> Reviews:
    """The reviews in ``path`` (all, or the first ``limit``), validated."""
    if limit is None:
        reviews = _read_csv_arrow(path, num_classes)
        if reviews is not None:
            return reviews
    return _read_csv_python(path, num_classes, limit)


def _read_csv_arrow(path: Path, num_classes: int) -> Reviews | None:
    """Fast path; None when pyarrow rejects the file or a label is missing or out of range."""
    from pyarrow import csv as pacsv

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["label", "title", "text"]),
            convert_options=pacsv.ConvertOptions(
                column_types={"label": pa.int64(), "title": pa.string(), "text": pa.string()},
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError):
        return None  # the exact path below names the bad line, or why the file cannot be read
    if table.num_rows == 0 or table["label"].null_count:
        return None
    labels = table["label"].to_numpy()
    if labels.min() < 1 or labels.max() > num_classes:
        return None
    return Reviews(labels - 1, table["title"], table["text"])


def _read_csv_python(path: Path, num_classes: int, limit: int | None) -> Reviews:
    """Slow, exact path: raises HpmlError naming ``path:line`` for the first bad row."""
    labels: list[int] = []
    titles: list[str] = []
    bodies: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if limit is not None and len(labels) >= limit:
                    break
                where = f"{path}:{reader.line_num}"
                if len(row) != 3:
                    raise HpmlError(f"{where}: expected 3 quoted fields (class, title, text), got {len(row)}")
                try:
                    label = int(row[0])
                except ValueError:
                    label = 0
                if not 1 <= label <= num_classes:
                    raise HpmlError(f"{where}: class {row[0]!r} is not an integer in 1..{num_classes}")
                labels.append(label - 1)
                titles.append(row[1])
                bodies.append(row[2])
    except FileNotFoundError:
        raise HpmlError(f"missing review file {path}") from None
    except OSError as err:  # no permission, a folder named like the file, an I/O error
        raise HpmlError(f"cannot read review file {path}: {os_error(err)}") from None
    except csv.Error as err:
        raise HpmlError(f"{path}:{reader.line_num}: malformed CSV: {err}") from None
    if not labels:
        raise HpmlError(f'{path}: empty CSV; expected lines like "1","title","review text"')
    return Reviews(
        np.asarray(labels, dtype=np.int64),
        pa.chunked_array([pa.array(titles, pa.string())]),
        pa.chunked_array([pa.array(bodies, pa.string())]),
    )


# -- Hugging Face files ---------------------------------------------------------------


def _hf_files(root: Path, split: str) -> list[Path]:
    found = [*root.glob(f"*{split}*"), *root.glob(f"*/*{split}*")]
    return sorted(p for p in found if p.suffix in _HF_SUFFIXES and p.is_file())


def read_hf(files: list[Path], num_classes: int, limit: int | None = None) -> Reviews:
    """Reviews from local HF-format files through ``datasets.load_dataset`` (no network)."""
    import datasets

    builders = {_HF_SUFFIXES[p.suffix] for p in files}
    if len(builders) != 1:
        raise HpmlError(f"mixed file types in {files[0].parent}: use only parquet or only json/jsonl")
    names = ", ".join(str(p) for p in files)
    # Its "Generating split" bars and log lines would add lines to stderr around hpml's one-line errors.
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    try:
        ds = datasets.load_dataset(
            builders.pop(),
            data_files={"split": [str(p) for p in files]},
            split="split",
            cache_dir=str(cache_dir() / "hf-datasets"),
        )
    except Exception as err:  # the builders raise many types for a bad file
        raise HpmlError(f"cannot read {names}: {type(err).__name__}: {squeezed_message(err)}") from None
    table = ds.data
    body_col = "content" if "content" in ds.column_names else "text"
    missing = {"label", "title", body_col} - set(ds.column_names)
    if missing:
        raise HpmlError(f"{names}: missing columns {sorted(missing)}; found {ds.column_names}")
    n = len(ds) if limit is None else min(limit, len(ds))
    if n == 0:
        raise HpmlError(f"{names}: no rows")
    column = table.column("label").slice(0, n)
    if not pa.types.is_integer(column.type):
        # a ClassLabel column is stored as integers; strings would fail to cast with a
        # traceback, floats would be truncated into wrong classes
        raise HpmlError(f"{names}: column 'label' holds {column.type}, expected integer class ids "
                        f"0..{num_classes - 1}")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise HpmlError(f"{names}: row {row} has no label (null); every review needs one")
    labels = column.to_numpy().astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise HpmlError(f"{names}: row {bad[0]} has label {labels[bad[0]]} outside 0..{num_classes - 1}")
    return Reviews(labels, table.column("title").slice(0, n), table.column(body_col).slice(0, n))


# -- dataset ----------------------------------------------------------------------------


def _locate(request: DataRequest) -> tuple[str, dict[str, list[Path]]]:
    """``("csv" | "hf", {split: files})`` for the first form found."""
    info, data_dir = request.info, request.data_dir
    if not data_dir.is_dir():
        raise missing_data(info, data_dir, "no such directory")
    for root in (data_dir / _CSV_FOLDERS[info.name], data_dir):
        if (root / f"{request.split}.csv").is_file():
            return "csv", {s: [p] if (p := root / f"{s}.csv").is_file() else [] for s in ("train", "test")}
    for root in (data_dir / info.name, data_dir):
        if root.is_dir() and _hf_files(root, request.split):
            return "hf", {s: _hf_files(root, s) for s in ("train", "test")}
    raise missing_data(info, data_dir)


def _read(kind: str, files: list[Path], num_classes: int, limit: int | None) -> Reviews:
    return read_csv(files[0], num_classes, limit) if kind == "csv" else read_hf(files, num_classes, limit)


def default_tokenizer(info: DatasetInfo, kind: str, train_files: list[Path]) -> Tokenizer:
    """Trained on the first ``TRAIN_SAMPLE`` training reviews, cached per file version."""
    if not train_files:
        raise HpmlError(f"{info.name}: no training files found; the default tokenizer is trained on them")
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in train_files)
    return trained_tokenizer(
        f"{info.name}|{kind}|{stamp}",
        lambda: ArrowReviews(_read(kind, train_files, info.num_classes, TRAIN_SAMPLE)).texts(TRAIN_SAMPLE),
    )


def _load(request: DataRequest) -> TextDataset:
    info = request.info
    kind, files = _locate(request)
    reviews = _read(kind, files[request.split], info.num_classes, request.size)
    if request.size is not None:
        if request.size > len(reviews.labels):
            where = files[request.split][0]
            raise HpmlError(f"size={request.size} exceeds the {len(reviews.labels)} reviews in {where}")
        reviews = reviews.head(request.size)
    tokenizer = request.tokenizer
    if tokenizer is None:
        tokenizer = default_tokenizer(info, kind, files["train"])
    source = ArrowReviews(reviews)
    return TextDataset(
        source, info, request.split, synthetic=False, tokenizer=tokenizer, seq_len=request.seq_len
    )


@register_dataset(AMAZON_POLARITY)
def amazon_polarity(request: DataRequest) -> TextDataset:
    return _load(request)


@register_dataset(AMAZON_FULL)
def amazon_full(request: DataRequest) -> TextDataset:
    return _load(request)
