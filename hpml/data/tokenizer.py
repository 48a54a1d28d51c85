"""SentencePiece tokenisation into fixed-length XLNet-style rows: pieces, ``<sep> <cls>``, left-padded.

XLNet's head reads the last position, so left padding keeps ``<cls>`` there; long texts lose their end."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Callable, Iterable

import sentencepiece as spm
import torch
from torch import Tensor

from hpml.data.base import cache_dir
from hpml.errors import HpmlError, squeezed_message
from hpml.files import write_bytes_atomic

DEFAULT_VOCAB_SIZE = 8000  # pieces; an upper bound when the text is too small for it
TRAIN_SAMPLE = 20_000  # training texts read to fit the default tokenizer
_MAX_TRAIN_CHARS = 4000  # longer texts are cut (SentencePiece skips sentences over ~4 KB)


class Tokenizer:
    """``encode(text, seq_len) -> list[int]`` of exactly ``seq_len`` ids; ``pad_id``, ``vocab_size``."""

    def __init__(self, model_proto: bytes, *, origin: str = "<memory>") -> None:
        self.origin = origin
        self._proto = model_proto
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        except (RuntimeError, OSError) as err:
            raise HpmlError(f"{origin} is not a SentencePiece model: {squeezed_message(err)}") from None
        sp = self._sp
        self.vocab_size: int = sp.get_piece_size()
        self.pad_id: int = sp.pad_id() if sp.pad_id() >= 0 else sp.piece_to_id("<pad>")
        if self.pad_id == sp.unk_id():
            raise HpmlError(f"SentencePiece model {origin} has no <pad> piece to pad sequences with")
        suffix = [sp.piece_to_id("<sep>"), sp.piece_to_id("<cls>")]
        self.suffix: list[int] = [] if sp.unk_id() in suffix else suffix

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        path = Path(path).expanduser()
        if not path.is_file():
            raise HpmlError(f"tokenizer model {path} not found; pass a SentencePiece file (e.g. spiece.model)")
        return cls(path.read_bytes(), origin=str(path))

    def encode(self, text: str, seq_len: int) -> list[int]:
        return self._fit(self._sp.encode(text), seq_len)

    def encode_batch(self, texts: list[str], seq_len: int) -> Tensor:
        """``int64[len(texts), seq_len]``; SentencePiece encodes the list on several threads."""
        rows = self._sp.encode(texts, num_threads=min(8, os.cpu_count() or 1))
        fitted = [self._fit(r, seq_len) for r in rows]
        return torch.tensor(fitted, dtype=torch.int64).view(len(texts), seq_len)

    def decode(self, ids: list[int]) -> str:
        return self._sp.decode([i for i in ids if i != self.pad_id and i not in self.suffix])

    def _fit(self, ids: list[int], seq_len: int) -> list[int]:
        body = seq_len - len(self.suffix)
        if body < 1:
            raise HpmlError(f"seq_len={seq_len} leaves no room for text after {len(self.suffix)} end tokens")
        ids = ids[:body] + self.suffix
        return [self.pad_id] * (seq_len - len(ids)) + ids

    def __getstate__(self) -> dict[str, object]:
        # SentencePieceProcessor is rebuilt from the serialized model in each worker process.
        return {"proto": self._proto, "origin": self.origin}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["proto"], origin=state["origin"])  # type: ignore[misc,arg-type]

    def __repr__(self) -> str:
        return f"Tokenizer({self.origin}, vocab_size={self.vocab_size}, pad_id={self.pad_id})"


def train_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> bytes:
    """Fit a unigram SentencePiece model (pad 0, unk 1, ``<sep>``, ``<cls>``; no BOS/EOS); returns it serialized."""
    sample = [t[:_MAX_TRAIN_CHARS] for t in texts if t.strip()]
    if not sample:
        raise HpmlError("cannot train a tokenizer: the training text is empty")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_writer=out,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        user_defined_symbols=["<sep>", "<cls>"],
        hard_vocab_limit=False,
        shuffle_input_sentence=False,
        num_threads=min(8, os.cpu_count() or 1),
        minloglevel=2,
    )
    return out.getvalue()


def trained_tokenizer(
    key: str, texts: Callable[[], Iterable[str]], vocab_size: int = DEFAULT_VOCAB_SIZE
) -> Tokenizer:
    """The cached tokenizer for ``key``, trained from ``texts()`` on a miss and written atomically."""
    digest = hashlib.sha256(f"{key}|vocab={vocab_size}".encode()).hexdigest()[:16]
    path = cache_dir() / "tokenizers" / f"{digest}.model"
    if path.is_file():
        try:
            return Tokenizer(path.read_bytes(), origin=str(path))
        except (HpmlError, OSError):
            pass  # a damaged or unreadable cache entry is retrained (and replaced if it can be)
    proto = train_tokenizer(texts(), vocab_size)
    try:
        write_bytes_atomic(path, proto, parents=True)
    except OSError:  # a cache that is a file, read-only, or a folder in the way: this run goes on uncached
        return Tokenizer(proto, origin=f"trained (cache {path} not writable)")
    return Tokenizer(proto, origin=str(path))
