"""Two ways to feed a step: a seeded ``DataLoader`` and a device-resident loader (airbench's recipe:
nothing crosses the host-device link per step). Both are deterministic by seed."""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from hpml.data.base import HpmlDataset, ImageDataset
from hpml.data.transforms import (RandomResizedCropFlip, pad_crop_flip_batch, resized_crop_boxes,
                                  resized_crop_flip_batch)
from hpml.errors import HpmlError


@dataclass(frozen=True)
class LoaderOptions:
    """``DataLoader`` settings, validated at construction."""

    batch_size: int  # samples per batch
    shuffle: bool = True
    num_workers: int = 0  # 0: load in the training process
    pin_memory: bool = False
    persistent_workers: bool = False  # keep workers alive across epochs (needs workers)
    prefetch_factor: int | None = None  # batches in flight per worker (needs workers)
    drop_last: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise HpmlError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise HpmlError(f"num_workers must be >= 0 (0 = no worker processes), got {self.num_workers}")
        if self.num_workers == 0 and self.persistent_workers:
            raise HpmlError("persistent_workers=True needs num_workers >= 1")
        if self.prefetch_factor is not None:
            if self.num_workers == 0:
                raise HpmlError("prefetch_factor needs num_workers >= 1; leave it None without workers")
            if self.prefetch_factor < 1:
                raise HpmlError(f"prefetch_factor must be >= 1 (batches/worker), got {self.prefetch_factor}")


def _stop_worker(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quiet_when_the_receiver_left(hook):
    """``hook``, silent for the errors of a batch whose receiver went away mid-transfer.

    A worker hands each batch's shared memory over in a thread of multiprocessing's
    (``resource_sharer``), which reports any error through ``sys.excepthook``; when the
    training process is stopped while it fetches a batch, that is its handshake breaking
    off, and the stopped process reports the stop itself (issue 33.24)."""
    def quiet(exc_type, exc, tb) -> None:
        if not issubclass(exc_type, (EOFError, ConnectionError, multiprocessing.AuthenticationError)):
            hook(exc_type, exc, tb)

    return quiet


def _seed_worker(worker_id: int) -> None:
    """Reseed the worker's dataset copy from its worker seed (augmentation follows the loader seed), and end
    the worker quietly on SIGTERM."""
    # A SIGTERM to the whole process group (a scheduler, a shell) reaches the workers too.
    # torch's worker loop ends quietly on KeyboardInterrupt and leaves the report to the
    # main process; killed by the signal instead, a worker kept its pymp-* temp folder and
    # the main process printed "DataLoader worker ... is killed by signal" (issue 33.10).
    signal.signal(signal.SIGTERM, _stop_worker)
    sys.excepthook = _quiet_when_the_receiver_left(sys.excepthook)
    info = get_worker_info()
    if info is not None and isinstance(info.dataset, HpmlDataset):
        info.dataset.seed_augmentation(info.seed % 2**63)


def make_loader(
    dataset: Dataset,  # type: ignore[type-arg]
    options: LoaderOptions,
    *,
    sampler: Sampler | None = None,  # type: ignore[type-arg]
) -> DataLoader:  # type: ignore[type-arg]
    """A ``DataLoader`` whose order and augmentation are fixed by ``options.seed``.

    A ``sampler`` decides the order itself (``options.shuffle=False``); without workers the dataset's generator is reseeded here."""
    if sampler is not None and options.shuffle:
        raise HpmlError("shuffle=True conflicts with a sampler (it sets the order); pass shuffle=False")
    generator = torch.Generator()
    generator.manual_seed(options.seed)
    if options.num_workers == 0 and isinstance(dataset, HpmlDataset):
        dataset.seed_augmentation(options.seed)
    return DataLoader(
        dataset,
        batch_size=options.batch_size,
        shuffle=options.shuffle,
        sampler=sampler,
        num_workers=options.num_workers,
        pin_memory=options.pin_memory,
        persistent_workers=options.persistent_workers,
        prefetch_factor=options.prefetch_factor,
        drop_last=options.drop_last,
        generator=generator,
        worker_init_fn=_seed_worker if options.num_workers > 0 else None,
    )


class DeviceLoader:
    """Batches of a split held on ``device`` and augmented there with the dataset's recipe, vectorised.

    Each ``iter()`` is one epoch shuffled by ``seed + epoch``; :meth:`set_epoch` sets it, as ``DistributedSampler`` does."""

    padding = 4  # px of zero padding for the random crop

    def __init__(
        self,
        dataset: HpmlDataset,
        batch_size: int,
        device: str | torch.device,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        augment: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise HpmlError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        x, y = dataset.arrays()
        self.x = x.to(self.device)  # copied to the device once
        self.y = y.to(self.device, torch.int64)
        self.is_image = isinstance(dataset, ImageDataset)
        self.augment = self.is_image and (dataset.augment if augment is None else augment)
        self.hflip = dataset.info.hflip
        # the same work as the dataset's per-sample transform, so a speedup compares like with like
        self.resized_crop = isinstance(getattr(dataset, "transform", None), RandomResizedCropFlip)
        if self.is_image:
            std = torch.tensor(dataset.info.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
            mean = torch.tensor(dataset.info.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
            self._scale = 1 / (255 * std)  # uint8 -> normalised: x * scale + shift
            self._shift = -mean / std
            self.out_size: int = dataset.image_size  # type: ignore[attr-defined]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.y)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        # All of the epoch's randomness is drawn on the CPU generator (the same batches on
        # every device) and copied over once, not per batch.
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        if self.augment:
            shifts = torch.randint(0, 2 * self.padding + 1, (2, n), generator=g)
            flips = torch.rand(n, generator=g) < 0.5 if self.hflip else torch.zeros(n, dtype=torch.bool)
            boxes = resized_crop_boxes(n, self.x.shape[-2], self.x.shape[-1], g).to(self.device) if self.resized_crop else None
            shifts, flips = shifts.to(self.device), flips.to(self.device)
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, n), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.x[idx]
            if self.is_image:
                at = slice(start, start + len(idx))
                if self.augment and self.resized_crop:
                    x = resized_crop_flip_batch(x.to(torch.float32), boxes[at], flips[at], self.out_size)
                elif self.augment:
                    x = pad_crop_flip_batch(x, shifts[0, at], shifts[1, at], flips[at], self.padding)
                x = self._to_float(x)
            yield x, self.y[idx]

    def _to_float(self, x: Tensor) -> Tensor:
        xf = x.to(torch.float32)
        if xf.shape[-1] != self.out_size:
            xf = torch.nn.functional.interpolate(
                xf, size=(self.out_size, self.out_size), mode="bilinear", antialias=True, align_corners=False
            )
        return xf.mul_(self._scale).add_(self._shift)
