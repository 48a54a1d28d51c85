"""Per-sample transforms and the batched device augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hpml.data.transforms import (
    PadCropFlip,
    RandomResizedCropFlip,
    ResizeCenterCrop,
    normalize,
    pad_crop_flip_batch,
)

FEW = settings(max_examples=15, deadline=None)
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _reference(image: torch.Tensor, dy: int, dx: int, flip: bool, pad: int) -> torch.Tensor:
    s = image.shape[-1]
    out = F.pad(image, (pad, pad, pad, pad))[:, dy : dy + s, dx : dx + s]
    return out.flip(-1) if flip else out


@FEW
@given(b=st.integers(1, 6), s=st.sampled_from([8, 12, 32]), pad=st.integers(0, 4), seed=st.integers(0, 1000))
def test_batched_crop_flip_matches_per_sample(b: int, s: int, pad: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, 3, s, s), generator=g, dtype=torch.uint8)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=g)
    flip = torch.rand(b, generator=g) < 0.5
    out = pad_crop_flip_batch(images, dy, dx, flip, pad)
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.is_contiguous()
    for i in range(b):
        assert torch.equal(out[i], _reference(images[i], int(dy[i]), int(dx[i]), bool(flip[i]), pad))


@FEW
@given(h=st.integers(1, 80), w=st.integers(1, 80), seed=st.integers(0, 1000))
def test_random_resized_crop_box_is_inside(h: int, w: int, seed: int) -> None:
    top, left, ch, cw = RandomResizedCropFlip(16, MEAN, STD).crop_box(h, w, torch.Generator().manual_seed(seed))
    assert 0 <= top and 0 <= left and 0 < ch and 0 < cw and top + ch <= h and left + cw <= w


def test_transforms_output_and_determinism() -> None:
    image = torch.randint(0, 256, (3, 30, 50), dtype=torch.uint8)
    for recipe in (PadCropFlip, RandomResizedCropFlip, ResizeCenterCrop):
        transform = recipe(24, MEAN, STD)
        a = transform(image, torch.Generator().manual_seed(1))
        b = transform(image, torch.Generator().manual_seed(1))
        assert a.shape == (3, 24, 24) and a.dtype == torch.float32 and torch.equal(a, b)


def test_pad_crop_without_flip_never_mirrors() -> None:
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:, :, 16:] = 255  # dark left half, bright right half
    transform = PadCropFlip(32, MEAN, STD, hflip=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        assert (transform(image, g)[:, :, 8] < 0).all()  # column 8 stays in the dark half


def test_normalize() -> None:
    image = torch.full((3, 2, 2), 255, dtype=torch.uint8)
    expected = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD)]).view(3, 1, 1).expand(3, 2, 2)
    assert torch.allclose(normalize(image, MEAN, STD), expected)
