"""Synthetic twins: the real data's shapes, dtypes, classes and split sizes, no files.

Sample ``i`` is generated on access from ``(seed, split, i)``. Twins are learnable: each image class has
a fixed 4x4 colour layout under noise, each text class its share of sentiment words."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hpml.data.base import (
    SPLITS,
    DatasetInfo,
    HpmlDataset,
    ImageDataset,
    ImageTransform,
    TensorImageDataset,
    TextDataset,
    check_arrays_fit,
)
from hpml.data.tokenizer import Tokenizer, trained_tokenizer

#: Bump when the generators change, so cached twin tokenizers are retrained.
VERSION = 1

_GRID = 4  # class colour layout is _GRID x _GRID cells
_NOISE = 48.0  # std of the per-pixel noise, in 0..255 units


def sample_key(seed: int, split: str, index: int) -> tuple[int, int, int]:
    """Entropy for sample ``index`` (numpy's SeedSequence: torch keeps 32 bits of a seed, and 1.28M seeds would collide)."""
    return seed % 2**64, SPLITS.index(split), index


def _int_key(seed: int, split: str, index: int) -> int:
    """The same key as one int, for ``random.Random`` (which hashes every bit of it)."""
    s, k, i = sample_key(seed, split, index)
    return (s * len(SPLITS) + k) * 2**64 + i


def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode())  # stable across processes, unlike hash(str)


class SyntheticImages(ImageDataset):
    """Lazy image twin; native samples are uint8 ``[3, S, S]`` at the output side ``S``."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        *,
        size: int,
        seed: int,
        augment: bool,
        transform: ImageTransform,
        image_size: int,
    ) -> None:
        super().__init__(
            info, split, synthetic=True, augment=augment, transform=transform, image_size=image_size
        )
        self.size = size
        self.seed = seed
        g = torch.Generator().manual_seed(_name_seed(info.name))
        # class appearance is fixed per dataset (not per seed) so train and test agree
        self.prototypes = torch.rand(info.num_classes, 3, _GRID, _GRID, generator=g) * 255

    def __len__(self) -> int:
        return self.size

    def sample(self, index: int) -> tuple[Tensor, int]:
        rng = np.random.default_rng(sample_key(self.seed, self.split, index))
        label = int(rng.integers(self.info.num_classes))
        s = self.image_size
        base = F.interpolate(self.prototypes[label][None], size=(s, s), mode="nearest")[0]
        contrast = 0.5 + 0.5 * float(rng.random())
        noise = torch.from_numpy(rng.standard_normal((3, s, s), dtype=np.float32))
        image = (base - 128).mul_(contrast).add_(128).add_(noise.mul_(_NOISE))
        return image.clamp_(0, 255).round_().to(torch.uint8), label

    def arrays(self) -> tuple[Tensor, Tensor]:
        s = self.image_size
        check_arrays_fit((self.size, 3, s, s), 1, f"{self.info.name} twin")
        images = torch.empty(self.size, 3, s, s, dtype=torch.uint8)
        labels = torch.empty(self.size, dtype=torch.int64)
        for i in range(self.size):
            images[i], labels[i] = self.sample(i)
        return images, labels


# Review-like vocabulary.  Sentiment words run from most negative to most positive;
# class c of C draws mostly from the slice around position c / (C - 1).
_NEUTRAL = (
    "the a an this that it i we they my our product item order package box price quality "
    "size color battery screen sound book story author chapter case cable charger phone "
    "shipping seller delivery month week day time use used using bought buy got arrived "
    "came after before with for on in of to and but or so very really quite just also "
    "again still ever never would could should will was is are were be been have has had "
    "one two three first second last every some more less than then there here when while "
    "kitchen kids gift home car work travel music movie game camera light water coffee"
).split()
_SENTIMENT = (
    "terrible awful worst broken useless refund garbage waste disappointed junk "
    "poor cheap flimsy returned defective annoying mediocre lacking slow fragile "
    "okay average fine decent acceptable ordinary adequate passable middling fair "
    "good nice solid reliable useful handy pleasant sturdy comfortable recommend "
    "great excellent amazing perfect love fantastic wonderful superb outstanding best"
).split()
_SENTIMENT_SHARE = 0.15  # fraction of body words that carry sentiment
_CLASS_SPREAD = 10  # sentiment words in each class's window


class SyntheticReviews:
    """Lazy ``TextSource``: review strings and labels generated from (seed, split, index)."""

    def __init__(self, num_classes: int, split: str, size: int, seed: int) -> None:
        self.num_classes = num_classes
        self.split = split
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int) -> random.Random:
        return random.Random(_int_key(self.seed, self.split, index))

    def label(self, index: int) -> int:
        return self._rng(index).randrange(self.num_classes)

    def text(self, index: int) -> str:
        rng = self._rng(index)
        label = rng.randrange(self.num_classes)  # same first draw as label()
        centre = label / max(1, self.num_classes - 1) * (len(_SENTIMENT) - _CLASS_SPREAD)
        lo = int(round(centre))
        mood = _SENTIMENT[lo : lo + _CLASS_SPREAD]

        def words(n: int) -> list[str]:
            share = _SENTIMENT_SHARE
            return [rng.choice(mood) if rng.random() < share else rng.choice(_NEUTRAL) for _ in range(n)]

        title = " ".join(words(rng.randint(2, 6))).capitalize()
        sentences = []
        for _ in range(rng.randint(2, 8)):
            sentences.append(" ".join(words(rng.randint(5, 18))).capitalize() + rng.choice(".!."))
        return f"{title} {' '.join(sentences)}"


_TOKENIZER_SAMPLE = 2000  # twin reviews; their ~170-word vocabulary is covered many times over


#: Classes of the tokenizer's corpus: one mood window at every offset, so it holds every word.
_TOKENIZER_CLASSES = len(_SENTIMENT) - _CLASS_SPREAD + 1


def synthetic_tokenizer(info: DatasetInfo) -> Tokenizer:
    """The one tokenizer of every text twin, fitted on reviews over the whole vocabulary and cached:
    twins that differ in classes then do the same work up to the head."""
    train = SyntheticReviews(_TOKENIZER_CLASSES, "train", _TOKENIZER_SAMPLE, seed=0)
    return trained_tokenizer(
        f"reviews|synthetic-v{VERSION}", lambda: (train.text(i) for i in range(len(train)))
    )


def synthetic_text(
    info: DatasetInfo, split: str, *, size: int, seed: int, seq_len: int, tokenizer: Tokenizer | None
) -> TextDataset:
    source = SyntheticReviews(info.num_classes, split, size, seed)
    tok = tokenizer if tokenizer is not None else synthetic_tokenizer(info)
    return TextDataset(source, info, split, synthetic=True, tokenizer=tok, seq_len=seq_len)


class MaterializedReviews:
    """A ``TextSource`` holding a twin's review strings in memory (what a read CSV holds)."""

    def __init__(self, source: SyntheticReviews) -> None:
        self.texts = [source.text(i) for i in range(len(source))]
        self.labels = [source.label(i) for i in range(len(source))]

    def __len__(self) -> int:
        return len(self.texts)

    def text(self, index: int) -> str:
        return self.texts[index]

    def label(self, index: int) -> int:
        return self.labels[index]


def materialize(dataset: HpmlDataset) -> HpmlDataset:
    """The twin with every native sample generated now and held in memory, so a timed loader pass
    times the loader, not the generator (transforms still run per access). Real datasets come back unchanged."""
    if isinstance(dataset, SyntheticImages):
        images, labels = dataset.arrays()
        return TensorImageDataset(
            images, labels, dataset.info, dataset.split, synthetic=True, augment=dataset.augment,
            transform=dataset.transform, image_size=dataset.image_size,
        )
    if isinstance(dataset, TextDataset) and isinstance(dataset.source, SyntheticReviews):
        return TextDataset(
            MaterializedReviews(dataset.source), dataset.info, dataset.split, synthetic=True,
            tokenizer=dataset.tokenizer, seq_len=dataset.seq_len,
        )
    return dataset
