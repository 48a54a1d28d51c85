"""Amazon reviews read from the original quoted CSVs and from HF-format parquet/JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpml.data import TextDataset, create_dataset
from hpml.data.amazon import read_csv
from hpml.errors import HpmlError

from hpml.data.formats import write_amazon_csv

from .samples import AMAZON_ROWS

SEQ = 24  # tokens


def _texts(ds: TextDataset) -> list[str]:
    return [ds.source.text(i) for i in range(len(ds))]


def test_csv_splits(amazon_csv_dir: Path) -> None:
    train = create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir, seq_len=SEQ)
    test = create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir, seq_len=SEQ)
    assert isinstance(train, TextDataset) and not train.synthetic
    assert len(train) == 6 and len(test) == 3
    assert [train[i][1] for i in range(6)] == [int(r[0]) - 1 for r in AMAZON_ROWS]
    assert _texts(train)[1] == 'Broken Arrived broken; the "support" never answered.'
    x, y = train[0]
    assert x.shape == (SEQ,) and x.dtype == torch.int64 and y == 1
    assert train.tokenizer is test.tokenizer or train.vocab_size == test.vocab_size
    assert 0 < train.vocab_size and 0 <= train.pad_id < train.vocab_size


def test_arrays_match_getitem(amazon_csv_dir: Path) -> None:
    ds = create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir, seq_len=SEQ)
    ids, labels = ds.arrays()
    assert ids.shape == (3, SEQ) and ids.dtype == labels.dtype == torch.int64
    for i in range(3):
        assert torch.equal(ids[i], ds[i][0]) and labels[i] == ds[i][1]


def test_default_tokenizer_is_cached(amazon_csv_dir: Path, hpml_cache_dir: Path) -> None:
    create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir)
    models = sorted((hpml_cache_dir / "tokenizers").glob("*.model"))
    again = create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir)
    assert sorted((hpml_cache_dir / "tokenizers").glob("*.model")) == models
    assert again.tokenizer.origin in {str(m) for m in models}
    assert not list((hpml_cache_dir / "tokenizers").glob("*.tmp*"))


def test_size_reads_leading_rows_only(amazon_csv_dir: Path) -> None:
    full = create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir, seq_len=SEQ)
    head = create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir, seq_len=SEQ, size=4)
    assert _texts(head) == _texts(full)[:4]
    with pytest.raises(HpmlError, match="size=9 exceeds the 6 reviews"):
        create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir, size=9)


def test_fast_and_exact_csv_paths_agree(amazon_csv_dir: Path) -> None:
    path = amazon_csv_dir / "amazon_review_polarity_csv" / "train.csv"
    fast, exact = read_csv(path, 2), read_csv(path, 2, limit=100)
    assert fast.labels.tolist() == exact.labels.tolist()
    assert fast.body.to_pylist() == exact.body.to_pylist() and fast.title.to_pylist() == exact.title.to_pylist()


def test_newlines_inside_quoted_fields(tmp_path: Path) -> None:
    rows = [("1", "Two\nlines", "body, with comma"), ("2", "ok", "multi\nline\nbody")]
    write_amazon_csv(tmp_path / "amazon_review_polarity_csv" / "train.csv", rows)
    ds = create_dataset("amazon_polarity", "train", data_dir=tmp_path, seq_len=SEQ)
    assert _texts(ds) == ["Two\nlines body, with comma", "ok multi\nline\nbody"]


def test_amazon_full_five_classes(tmp_path: Path) -> None:
    rows = [(str(c), f"title {c}", f"{c} stars") for c in (1, 2, 3, 4, 5)]
    write_amazon_csv(tmp_path / "amazon_review_full_csv" / "train.csv", rows)
    write_amazon_csv(tmp_path / "amazon_review_full_csv" / "test.csv", rows[:2])
    ds = create_dataset("amazon_full", "train", data_dir=tmp_path, seq_len=SEQ)
    assert [ds[i][1] for i in range(5)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("size", [None, 10])  # both the pyarrow and the csv-module path
def test_ragged_csv_names_file_and_line(amazon_csv_dir: Path, size: int | None) -> None:
    path = amazon_csv_dir / "amazon_review_polarity_csv" / "train.csv"
    with open(path, "a") as f:
        f.write('"1","only a title"\n')
    with pytest.raises(HpmlError, match=rf"{path}:7: expected 3 quoted fields .* got 2"):
        create_dataset("amazon_polarity", "train", data_dir=amazon_csv_dir, size=size)


@pytest.mark.parametrize("label", ["3", "0", "two"])
def test_label_out_of_range_names_file_and_line(amazon_csv_dir: Path, label: str) -> None:
    path = amazon_csv_dir / "amazon_review_polarity_csv" / "test.csv"
    write_amazon_csv(path, [AMAZON_ROWS[0], (label, "t", "x")])
    with pytest.raises(HpmlError, match=rf"{path}:2: class '{label}' is not an integer in 1\.\.2"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir)


def test_empty_csv_names_file(amazon_csv_dir: Path) -> None:
    path = amazon_csv_dir / "amazon_review_polarity_csv" / "test.csv"
    path.write_text("")
    with pytest.raises(HpmlError, match=f"{path}: empty CSV"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir)


def test_test_split_without_train_file(amazon_csv_dir: Path) -> None:
    (amazon_csv_dir / "amazon_review_polarity_csv" / "train.csv").unlink()
    with pytest.raises(HpmlError, match="no training files found; the default tokenizer is trained on them"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_csv_dir)


def test_parquet_files(amazon_parquet_dir: Path) -> None:
    train = create_dataset("amazon_polarity", "train", data_dir=amazon_parquet_dir, seq_len=SEQ)
    test = create_dataset("amazon_polarity", "test", data_dir=amazon_parquet_dir / "amazon_polarity", seq_len=SEQ)
    assert len(train) == 6 and len(test) == 3
    assert [train[i][1] for i in range(6)] == [int(r[0]) - 1 for r in AMAZON_ROWS]
    assert _texts(train)[0] == "Great stuff Works as advertised, would buy again."
    assert test[2][0].shape == (SEQ,)
    assert len(create_dataset("amazon_polarity", "train", data_dir=amazon_parquet_dir, size=2, seq_len=SEQ)) == 2


def test_jsonl_files(tmp_path: Path) -> None:
    root = tmp_path / "amazon_full"
    root.mkdir()
    for split in ("train", "test"):
        with open(root / f"{split}.jsonl", "w") as f:
            for c in range(5):
                f.write(json.dumps({"label": c, "title": f"t{c}", "content": f"review {c}"}) + "\n")
    ds = create_dataset("amazon_full", "test", data_dir=tmp_path, seq_len=SEQ)
    assert [ds[i][1] for i in range(5)] == [0, 1, 2, 3, 4] and _texts(ds)[4] == "t4 review 4"


def test_parquet_label_out_of_range(amazon_parquet_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = amazon_parquet_dir / "amazon_polarity" / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"label": [0, 2], "title": ["a", "b"], "content": ["c", "d"]}), path)
    with pytest.raises(HpmlError, match=rf"{path}: row 1 has label 2 outside 0\.\.1"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_parquet_dir)


def test_parquet_missing_column(amazon_parquet_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = amazon_parquet_dir / "amazon_polarity" / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"label": [0], "content": ["c"]}), path)
    with pytest.raises(HpmlError, match=rf"{path}: missing columns \['title'\]"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_parquet_dir)


def test_corrupt_parquet_names_file(amazon_parquet_dir: Path) -> None:
    path = amazon_parquet_dir / "amazon_polarity" / "test-00000-of-00001.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(HpmlError, match=f"cannot read {path}"):
        create_dataset("amazon_polarity", "test", data_dir=amazon_parquet_dir)


def test_wrong_layout_names_expected_files(tmp_path: Path) -> None:
    (tmp_path / "amazon_review_polarity_csv").mkdir()
    with pytest.raises(HpmlError, match=r"expected amazon_review_polarity_csv/\{train,test\}\.csv or "):
        create_dataset("amazon_polarity", "train", data_dir=tmp_path)
