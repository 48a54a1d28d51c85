"""Turn a :class:`~hpml.train.run_config.RunConfig` into a ready :class:`TrainingSetup`: data, loaders, state."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from hpml.data import DatasetInfo, create_dataset, dataset_info
from hpml.data.loader import DeviceLoader, LoaderOptions, make_loader
from hpml.errors import HpmlError
from hpml.models import create_model
from hpml.train.optimizations import OptContext, Settings, compose
from hpml.train.run_config import RunConfig
from hpml.train.state import TrainState, make_state


@dataclass
class TrainingSetup:
    """Everything a training run needs, built once from its config."""

    cfg: RunConfig
    info: DatasetInfo
    settings: Settings
    train_set: Dataset
    test_set: Dataset
    train_loader: Iterable
    test_loader: Iterable
    state: TrainState
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes logs, checkpoints and results."""
        return self.rank == 0

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.train_loader, self.settings)

    @property
    def dropped_per_epoch(self) -> int:
        """Training samples (per rank) each epoch leaves out: its short last batch."""
        per_rank = len(getattr(self.train_loader, "sampler", None) or self.train_set)
        return per_rank - len(self.train_loader) * self.cfg.batch_size

    @property
    def total_steps(self) -> int:
        return total_steps(self.cfg, self.steps_per_epoch)

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)


def steps_per_epoch(train_loader: Iterable, settings: Settings) -> int:
    # a short last group of micro-batches is still one optimizer step
    return math.ceil(len(train_loader) / settings.accum_steps)


def total_steps(cfg: RunConfig, per_epoch: int) -> int:
    return cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def settings_for(cfg: RunConfig) -> Settings:
    return compose(cfg.optimizations, OptContext(cfg.device, cfg.accum_steps, cfg.num_workers))


def build_datasets(cfg: RunConfig) -> tuple[Dataset, Dataset]:
    common = dict(
        data_dir=cfg.data_dir, synthetic=cfg.synthetic, seed=cfg.seed,
        image_size=cfg.image_size, seq_len=cfg.seq_len,
    )
    # pretrained embeddings need their own vocabulary, so cfg.tokenizer replaces one fitted on the reviews
    train_set = create_dataset(cfg.dataset, "train", size=cfg.train_size, tokenizer=cfg.tokenizer, **common)
    # text: the test split must use the tokenizer fitted on the training text
    tokenizer = getattr(train_set, "tokenizer", None)
    test_set = create_dataset(cfg.dataset, "test", size=cfg.test_size, tokenizer=tokenizer, **common)
    return train_set, test_set


def build_loader(dataset: Dataset, cfg: RunConfig, settings: Settings, *, train: bool, sampler=None):
    """The loader the settings ask for. Training drops an epoch's short last batch: its shape would recompile
    and re-tune inside the measured steps, and one sample cannot train BatchNorm."""
    if settings.device_loader:
        return DeviceLoader(dataset, cfg.batch_size, cfg.device, shuffle=train, drop_last=train, seed=cfg.seed)
    options = LoaderOptions(
        batch_size=cfg.batch_size,
        shuffle=train and sampler is None,
        drop_last=train,
        num_workers=settings.num_workers,
        pin_memory=settings.pin_memory,
        persistent_workers=settings.persistent_workers,
        prefetch_factor=settings.prefetch_factor,
        seed=cfg.seed,
    )
    return make_loader(dataset, options, sampler=sampler) if sampler is not None else make_loader(dataset, options)


def model_kwargs(cfg: RunConfig, info: DatasetInfo, train_set: Dataset) -> dict[str, Any]:
    if info.modality == "text":
        return dict(
            preset=cfg.model_preset or "base",
            vocab_size=train_set.vocab_size,
            pad_id=train_set.pad_id,
            seq_len=cfg.seq_len or info.seq_len,
            weights=cfg.weights,
        )
    return dict(image_size=cfg.image_size or info.image_size, weights=cfg.weights)


def state_for(
    cfg: RunConfig, module, info: DatasetInfo, settings: Settings, *, total_steps: int = 1, warmup_steps: int = 0,
    wrap=None,
) -> TrainState:
    """The training state ``cfg`` asks for around ``module`` (optimizer, schedule, loss, settings)."""
    return make_state(
        module,
        device=cfg.device,
        settings=settings,
        optimizer=cfg.optimizer,
        lr=cfg.effective_lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        label_smoothing=cfg.label_smoothing,
        schedule=cfg.schedule,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        image_inputs=info.modality == "image",
        wrap=wrap,
    )


def build_training(cfg: RunConfig, *, rank: int = 0, world_size: int = 1, wrap_model=None) -> TrainingSetup:
    """Data, loaders, model and state for ``cfg``; ``wrap_model`` (DDP/FSDP) and ``rank``/``world_size`` for distributed runs."""
    seed_everything(cfg.seed)
    info = dataset_info(cfg.dataset)
    settings = settings_for(cfg)
    train_set, test_set = build_datasets(cfg)
    sampler = None
    if world_size > 1:
        sampler = torch.utils.data.DistributedSampler(
            train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=cfg.seed
        )
    train_loader = build_loader(train_set, cfg, settings, train=True, sampler=sampler)
    if len(train_loader) == 0:
        per_rank = len(sampler) if sampler is not None else len(train_set)
        raise HpmlError(f"--batch-size {cfg.batch_size} is more than the {per_rank} training samples"
                        f"{' per rank' if world_size > 1 else ''}: no full batch to train on; "
                        f"use --batch-size {per_rank} or less")
    test_loader = build_loader(test_set, cfg, settings, train=False)
    module = create_model(cfg.model, num_classes=info.num_classes, **model_kwargs(cfg, info, train_set))
    per_epoch = steps_per_epoch(train_loader, settings)
    state = state_for(cfg, module, info, settings, total_steps=total_steps(cfg, per_epoch),
                      warmup_steps=round(cfg.warmup_epochs * per_epoch), wrap=wrap_model)
    return TrainingSetup(cfg, info, settings, train_set, test_set, train_loader, test_loader, state, rank, world_size)
