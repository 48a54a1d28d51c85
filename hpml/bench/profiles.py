"""Benchmark profiles: how big each benchmark is, by name (``--hpml-profile``).

A profile fixes batch sizes, image sides, the XLNet preset, rounds and batches per call; its name
is recorded in every result.  What each profile is for: ``benchmarks/README.md``.

>>> get_profile("smoke").batch_size(dataset_info("cifar10"))
8
>>> get_profile("smoke").image_size(dataset_info("imagenet"))
96
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from hpml.data import DatasetInfo, dataset_info  # noqa: F401  (dataset_info: doctest)
from hpml.environment import VARS
from hpml.errors import HpmlError
from hpml.registry import Registry

#: Inputs at most this many px wide are "small images", as for hpml's ResNet stem.
SMALL_IMAGE_MAX_SIDE = 64

#: Environment variable that picks the profile when ``--hpml-profile`` is not given.
PROFILE_ENV = "HPML_BENCH_PROFILE"
#: Environment variable fixing the pairs per paired row (no adaptive stop); ``hpml gate --base`` sets it.
FIXED_PAIRS_ENV = "HPML_BENCH_PAIRS"


@dataclass(frozen=True)
class Profile:
    """Sizes and repetition counts of one benchmark profile (units in the comments)."""

    name: str
    description: str
    small_image_batch: int  # samples per micro-batch, images <= 64 px (CIFAR, digits)
    large_image_batch: int  # samples per micro-batch, ImageNet-sized images
    text_batch: int  # samples per micro-batch, token sequences
    large_image_size: int | None  # px side for ImageNet-sized datasets; None = native (224)
    text_preset: str  # XLNet architecture preset (tiny/base/large)
    seq_len: int | None  # tokens per sample; None = the dataset's default (256)
    rounds: int  # measured calls per benchmark
    warmup_rounds: int  # unmeasured calls first (compile, autotune, allocator, worker start)
    accum_steps: int  # micro-batches per optimizer step for grad_accum
    num_workers: int  # loader worker processes for the `workers` optimization
    prefetch_factor: int  # batches in flight per worker for the `prefetch` loader knob
    load_batches: int  # batches per measured call of a loading benchmark
    e2e_batches: int  # batches per measured call of an end-to-end benchmark
    preprocess_samples: int  # samples decoded + augmented per measured preprocessing call
    jpeg_size: tuple[int, int]  # (width, height) px of the JPEGs written for ImageNet rows
    target_halfwidth: float = 0.05  # relative half-width of a paired speedup's 95 % interval to stop at
    row_budget_s: float = 2.0  # s of measured calls (both sides) per row before it stops anyway
    min_pairs: int = 6  # pairs of the pilot (hpml.bench.pairing)
    # end-to-end rows that stand for their kind of data (hpml.bench.skips); None: every dataset
    end_to_end_datasets: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("target_halfwidth", "row_budget_s"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and value > 0 and value != float("inf")):
                raise HpmlError(f"profile {self.name!r}: {field} must be a number > 0, got {value!r}")
        if self.min_pairs < 1:
            raise HpmlError(f"profile {self.name!r}: min_pairs must be >= 1, got {self.min_pairs}")
        for field in ("small_image_batch", "large_image_batch", "text_batch", "rounds", "accum_steps",
                      "prefetch_factor", "load_batches", "e2e_batches", "preprocess_samples"):
            if getattr(self, field) < 1:
                raise HpmlError(f"profile {self.name!r}: {field} must be >= 1, got {getattr(self, field)}")
        if self.warmup_rounds < 0 or self.num_workers < 1:
            raise HpmlError(f"profile {self.name!r}: warmup_rounds must be >= 0 and num_workers >= 1")
        if self.large_image_size is not None and self.large_image_size <= SMALL_IMAGE_MAX_SIDE:
            raise HpmlError(
                f"profile {self.name!r}: large_image_size {self.large_image_size} px would switch ResNet to "
                f"the CIFAR stem; use more than {SMALL_IMAGE_MAX_SIDE} px"
            )

    def is_small_image(self, info: DatasetInfo) -> bool:
        return info.modality == "image" and info.image_size <= SMALL_IMAGE_MAX_SIDE

    def batch_size(self, info: DatasetInfo) -> int:
        """Samples per micro-batch for ``info``'s dataset."""
        if info.modality == "text":
            return self.text_batch
        return self.small_image_batch if self.is_small_image(info) else self.large_image_batch

    def image_size(self, info: DatasetInfo) -> int | None:
        """Input side (px) for an image dataset; None for text."""
        if info.modality != "image":
            return None
        if self.is_small_image(info) or self.large_image_size is None:
            return info.image_size
        return self.large_image_size

    def sequence_length(self, info: DatasetInfo) -> int | None:
        """Tokens per sample for a text dataset; None for images."""
        if info.modality != "text":
            return None
        return self.seq_len or info.seq_len

    def model_preset(self, info: DatasetInfo) -> str | None:
        return self.text_preset if info.modality == "text" else None

    def precision(self, target_halfwidth: float | None = None, row_budget_s: float | None = None):
        """When a paired row stops (:class:`hpml.bench.pairing.Precision`), with optional overrides."""
        from hpml.bench.pairing import Precision

        return Precision(self.target_halfwidth if target_halfwidth is None else target_halfwidth,
                         self.row_budget_s if row_budget_s is None else row_budget_s, self.min_pairs,
                         fixed_pairs=VARS[FIXED_PAIRS_ENV].get())

    def as_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


PROFILES: Registry[Profile] = Registry("benchmark profile")


def register_profile(profile: Profile) -> Profile:
    PROFILES.add(profile.name, profile)
    return profile


register_profile(Profile(
    name="smoke",
    description="CPU default: tiny batches, ImageNet at 96 px, XLNet tiny; aimed at a 10 min suite on 2 cores",
    small_image_batch=8,
    large_image_batch=8,
    text_batch=8,
    large_image_size=96,
    text_preset="tiny",
    seq_len=128,
    rounds=3,
    warmup_rounds=1,
    accum_steps=2,
    num_workers=2,
    prefetch_factor=4,
    load_batches=4,
    e2e_batches=2,
    preprocess_samples=32,
    jpeg_size=(160, 120),
    target_halfwidth=0.05,
    # most rows stop at min_pairs, fast loading rows here after 75-300 pairs (docs/studies/default-runs.md)
    row_budget_s=1.5,
    min_pairs=6,
    # in-memory arrays left out: the loader was 0.3 % of the call (docs/studies/default-runs.md)
    end_to_end_datasets=("imagenet", "amazon_polarity"),
))
register_profile(Profile(
    name="cpu",
    description="CPU reference: CIFAR batch 32, ImageNet 128 px batch 16, XLNet tiny; 8 rounds; run picked rows (-k)",
    small_image_batch=32,
    large_image_batch=16,
    text_batch=16,
    large_image_size=128,
    text_preset="tiny",
    seq_len=128,
    rounds=8,
    warmup_rounds=2,
    accum_steps=2,
    num_workers=2,
    prefetch_factor=4,
    load_batches=4,
    e2e_batches=2,
    preprocess_samples=64,
    jpeg_size=(160, 120),
    target_halfwidth=0.02,
    row_budget_s=20.0,
    min_pairs=8,
))
register_profile(Profile(
    name="standard",
    description="CUDA default: native resolutions, moderate batches, XLNet base at 256 tokens",
    small_image_batch=128,
    large_image_batch=64,
    text_batch=16,
    large_image_size=None,
    text_preset="base",
    seq_len=256,
    rounds=10,
    warmup_rounds=3,
    accum_steps=4,
    num_workers=4,
    prefetch_factor=4,
    load_batches=16,
    e2e_batches=16,
    preprocess_samples=256,
    jpeg_size=(500, 375),  # ImageNet's typical photo
    target_halfwidth=0.02,
    row_budget_s=20.0,
    min_pairs=8,
))
register_profile(Profile(
    name="full",
    description="GPU nodes: real training sizes (CIFAR bs 256, ImageNet 224 px bs 256, XLNet base 512 tokens bs 32)",
    small_image_batch=256,
    large_image_batch=256,
    text_batch=32,
    large_image_size=None,
    text_preset="base",
    seq_len=512,
    rounds=20,
    warmup_rounds=5,
    accum_steps=4,
    num_workers=8,
    prefetch_factor=4,
    load_batches=32,
    e2e_batches=32,
    preprocess_samples=1024,
    jpeg_size=(500, 375),
    target_halfwidth=0.01,
    row_budget_s=60.0,
    min_pairs=8,
))


def list_profiles() -> list[str]:
    return PROFILES.names()


def get_profile(name: str) -> Profile:
    """The registered profile ``name``; HpmlError naming the profiles otherwise."""
    if name not in PROFILES:
        raise HpmlError(f"unknown benchmark profile {name!r}; choose from {', '.join(list_profiles())}")
    return PROFILES.get(name)


def default_profile_name() -> str:
    """``$HPML_BENCH_PROFILE``, else ``standard`` with CUDA and ``smoke`` without."""
    return os.environ.get(PROFILE_ENV) or ("standard" if torch.cuda.is_available() else "smoke")
