"""Image transforms, per sample (CPU loaders) and per batch (device-resident loader).

Per-sample transforms take an explicit ``torch.Generator``, so augmentation depends on the loader seed alone.
Recipes: CIFAR-style pad-crop + flip; ImageNet-style random resized crop + flip (eval: resize and centre crop)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from hpml.data.base import DatasetInfo, ImageTransform


def normalize(image: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 ``(x / 255 - mean) / std``."""
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(-1, 1, 1)
    return image.to(torch.float32).div_(255).sub_(m).div_(s)


def _resize(image: Tensor, size: int) -> Tensor:
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return TF.resize(image, [size, size], antialias=True)


def _coin(rng: torch.Generator) -> bool:
    return bool(torch.rand((), generator=rng) < 0.5)


@dataclass(frozen=True)
class PadCropFlip:
    """CIFAR train augmentation at output side ``size`` (px)."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True

    def __call__(self, image: Tensor, rng: torch.Generator) -> Tensor:
        image = _resize(image, self.size)
        pad = self.size // 8  # 4 px at 32 px
        dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=rng).tolist()
        flip = self.hflip and _coin(rng)
        image = F.pad(image, (pad, pad, pad, pad))[:, dy : dy + self.size, dx : dx + self.size]
        if flip:
            image = image.flip(-1)
        return normalize(image, self.mean, self.std)


@dataclass(frozen=True)
class ResizeNormalize:
    """CIFAR eval transform: resize only if the output side differs from the native one."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Tensor, rng: torch.Generator) -> Tensor:
        return normalize(_resize(image, self.size), self.mean, self.std)


@dataclass(frozen=True)
class RandomResizedCropFlip:
    """ImageNet train augmentation (the torchvision recipe, drawing from ``rng``)."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float] = (0.08, 1.0)  # fraction of the image area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # width / height

    def crop_box(self, height: int, width: int, rng: torch.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w); ten tries, then the largest centred crop within ``ratio``."""
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            u = torch.rand(4, generator=rng).tolist()
            target = area * (self.scale[0] + u[0] * (self.scale[1] - self.scale[0]))
            aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(u[2] * (height - h + 1))
                left = int(u[3] * (width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: Tensor, rng: torch.Generator) -> Tensor:
        top, left, h, w = self.crop_box(image.shape[-2], image.shape[-1], rng)
        image = TF.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True)
        if _coin(rng):
            image = image.flip(-1)
        return normalize(image, self.mean, self.std)


@dataclass(frozen=True)
class ResizeCenterCrop:
    """ImageNet eval: short side to ``size * 256 / 224`` px, then the centre ``size`` px."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Tensor, rng: torch.Generator) -> Tensor:
        image = TF.resize(image, [round(self.size * 256 / 224)], antialias=True)
        image = TF.center_crop(image, [self.size, self.size])
        return normalize(image, self.mean, self.std)


def cifar_transform(info: DatasetInfo, augment: bool, image_size: int) -> ImageTransform:
    if augment:
        return PadCropFlip(image_size, info.mean, info.std, hflip=info.hflip)
    return ResizeNormalize(image_size, info.mean, info.std)


def imagenet_transform(info: DatasetInfo, augment: bool, image_size: int) -> ImageTransform:
    if augment:
        return RandomResizedCropFlip(image_size, info.mean, info.std)
    return ResizeCenterCrop(image_size, info.mean, info.std)


def pad_crop_flip_batch(images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, pad: int) -> Tensor:
    """Per-sample random crop (``pad`` px zero padding) and optional flip as one gather; uint8 ``[B, C, S, S]`` in and out."""
    b, _, s, _ = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    offs = torch.arange(s, device=images.device)
    rows = dy[:, None] + offs  # [B, S]
    cols = dx[:, None] + torch.where(flip[:, None], s - 1 - offs, offs)  # [B, S]
    batch = torch.arange(b, device=images.device)[:, None, None]
    # advanced indices around the channel slice: result is [B, S, S, C]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def resized_crop_boxes(n: int, height: int, width: int, rng: torch.Generator,
                       scale: tuple[float, float] = RandomResizedCropFlip.scale,
                       ratio: tuple[float, float] = RandomResizedCropFlip.ratio) -> Tensor:
    """``n`` boxes ``(top, left, h, w)`` drawn as :meth:`RandomResizedCropFlip.crop_box` draws one."""
    u = torch.rand(n, 10, 4, generator=rng)
    area = height * width * (scale[0] + u[..., 0] * (scale[1] - scale[0]))
    aspect = torch.exp(math.log(ratio[0]) + u[..., 1] * (math.log(ratio[1]) - math.log(ratio[0])))
    w, h = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(ok.any(1), ok.int().argmax(1), -1)  # the first try that fits, or none
    pick = first.clamp(min=0)[:, None]
    w, h = w.gather(1, pick)[:, 0], h.gather(1, pick)[:, 0]
    top = (u[..., 2].gather(1, pick)[:, 0] * (height - h + 1)).floor()
    left = (u[..., 3].gather(1, pick)[:, 0] * (width - w + 1)).floor()
    in_ratio = width / height
    fw = width if in_ratio <= ratio[1] else round(height * ratio[1])
    fh = height if in_ratio >= ratio[0] else round(width / ratio[0])
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], dtype=torch.float32)
    boxes = torch.stack([top, left, h, w], 1)
    return torch.where((first < 0)[:, None], fallback, boxes)


def resized_crop_flip_batch(images: Tensor, boxes: Tensor, flip: Tensor, size: int) -> Tensor:
    """Each box resized to ``size`` px (bilinear) and flipped where ``flip``: one ``grid_sample`` per batch."""
    b, c, height, width = images.shape
    top, left, h, w = boxes.to(images.device, torch.float32).unbind(1)
    sx = torch.where(flip, -1.0, 1.0) * w / width  # normalised [-1, 1] coordinates, pixel edges
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, (2 * left + w) / width - 1
    theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
