"""Tokenizer: fixed-length XLNet-style rows, model files, training and the on-disk cache."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import sentencepiece as spm

from hpml.data import create_dataset
from hpml.data.tokenizer import Tokenizer, train_tokenizer, trained_tokenizer
from hpml.errors import HpmlError

TEXTS = [f"review number {i} says the product is {'good' if i % 2 else 'bad'} overall" for i in range(200)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(train_tokenizer(TEXTS, vocab_size=100))


def test_rows_are_left_padded_and_end_with_sep_cls(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("the product is good", 40)
    assert len(ids) == 40 and ids[0] == tokenizer.pad_id
    assert tokenizer.suffix and ids[-2:] == tokenizer.suffix
    assert tokenizer.decode(ids) == "the product is good"


def test_truncation_keeps_the_beginning(tokenizer: Tokenizer) -> None:
    text = " ".join(TEXTS[:5])
    ids = tokenizer.encode(text, 8)
    assert len(ids) == 8 and tokenizer.pad_id not in ids
    assert text.startswith(tokenizer.decode(ids))


def test_batch_matches_single(tokenizer: Tokenizer) -> None:
    batch = tokenizer.encode_batch(TEXTS[:4], 12)
    assert batch.shape == (4, 12)
    assert [tokenizer.encode(t, 12) for t in TEXTS[:4]] == batch.tolist()


def test_pickles_for_worker_processes(tokenizer: Tokenizer) -> None:
    clone = pickle.loads(pickle.dumps(tokenizer))
    assert clone.encode(TEXTS[3], 20) == tokenizer.encode(TEXTS[3], 20) and clone.pad_id == tokenizer.pad_id


def test_seq_len_too_short(tokenizer: Tokenizer) -> None:
    with pytest.raises(HpmlError, match="seq_len=2 leaves no room"):
        tokenizer.encode("x", 2)


def test_from_file_with_xlnet_style_pad_piece(tmp_path: Path) -> None:
    """A model like XLNet's spiece.model: no trainer pad id, ``<pad>`` as a user symbol."""
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS),
        model_writer=out,
        vocab_size=60,
        pad_id=-1,
        user_defined_symbols=["<cls>", "<sep>", "<pad>"],
        hard_vocab_limit=False,
        minloglevel=2,
    )
    path = tmp_path / "spiece.model"
    path.write_bytes(out.getvalue())
    tok = Tokenizer.from_file(path)
    assert tok.pad_id == tok._sp.piece_to_id("<pad>") and tok.origin == str(path)
    ds = create_dataset("amazon_polarity", "test", size=3, seq_len=10, tokenizer=str(path))
    assert ds.pad_id == tok.pad_id and ds[0][0].shape == (10,)


def test_model_without_pad_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_writer=out, vocab_size=60, hard_vocab_limit=False, minloglevel=2
    )
    path = tmp_path / "nopad.model"
    path.write_bytes(out.getvalue())
    with pytest.raises(HpmlError, match=f"{path} has no <pad> piece"):
        Tokenizer.from_file(path)


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(HpmlError, match="tokenizer model .*missing.model not found"):
        Tokenizer.from_file(tmp_path / "missing.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(HpmlError, match=f"{garbage} is not a SentencePiece model"):
        Tokenizer.from_file(garbage)


def test_empty_training_text() -> None:
    with pytest.raises(HpmlError, match="training text is empty"):
        train_tokenizer(["", "  "])


def test_cache_trains_once_and_repairs_damage(hpml_cache_dir: Path) -> None:
    calls = []

    def texts() -> list[str]:
        calls.append(1)
        return TEXTS

    first = trained_tokenizer("test-cache-key", texts, vocab_size=80)
    second = trained_tokenizer("test-cache-key", texts, vocab_size=80)
    assert len(calls) == 1 and first.origin == second.origin
    Path(first.origin).write_bytes(b"damaged")
    third = trained_tokenizer("test-cache-key", texts, vocab_size=80)
    assert len(calls) == 2 and third.encode("good", 6) == first.encode("good", 6)
