"""One frozen configuration for a training run; an impossible combination fails at construction, naming the allowed values."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from hpml.errors import HpmlError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda")

#: Learning rate when none is given (SGD: per 128 samples, scaled in :func:`RunConfig.effective_lr`).
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without CUDA is an error."""
    if device not in DEVICES:
        raise HpmlError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise HpmlError("device 'cuda' requested but CUDA is not available on this machine; use --device cpu")
    return device


def device_memory_bytes(device: str) -> int:
    """Total memory (bytes) of the device a run trains on: host RAM for ``cpu``."""
    if device == "cuda":
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    import psutil

    return psutil.virtual_memory().total


@dataclass(frozen=True)
class RunConfig:
    """What to train, where, and with which optimizations (see ``hpml train --help``)."""

    model: str = "resnet50"
    dataset: str = "cifar10"
    device: str = "auto"
    batch_size: int = 32  # samples per micro-batch; one optimizer step sees accum_steps of them
    optimizer: str = "sgd"
    lr: float | None = None  # None -> DEFAULT_LR scaled by batch size (SGD) or as is (Adam)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    epochs: int = 1
    steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    seed: int = 0
    optimizations: tuple[str, ...] = ()
    accum_steps: int = 4  # micro-batches per optimizer step when `grad_accum` is on
    num_workers: int = 2  # loader worker processes when `workers` is on
    model_preset: str | None = None  # xlnet: tiny/base/large
    image_size: int | None = None  # None -> the dataset's native size
    seq_len: int | None = None  # None -> the dataset's default
    train_size: int | None = None  # None -> the whole split (synthetic twins: the real size)
    test_size: int | None = None
    data_dir: str | None = None
    synthetic: bool | None = None  # None -> synthetic twin unless data_dir is given
    weights: str | None = None  # local pretrained weights (file or directory)
    evaluate: bool = True
    tokenizer: str | None = None  # a SentencePiece file (pretrained XLNet's spiece.model) instead of one fitted on the reviews

    def __post_init__(self) -> None:
        from hpml.data import dataset_info, list_datasets
        from hpml.models import model_presets, model_spec
        from hpml.train.optimizations import validate_optimizations

        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("device", resolve_device(self.device))
        set_("optimizations", tuple(dict.fromkeys(self.optimizations)))  # de-duplicate, keep order
        spec = model_spec(self.model)  # registered, plugin or SOURCE:NAME; else a one-line error
        if self.dataset not in list_datasets():
            raise HpmlError(f"unknown dataset {self.dataset!r}; registered: {', '.join(list_datasets())}")
        info = dataset_info(self.dataset)
        if spec.modality != info.modality:
            raise HpmlError(
                f"model {self.model!r} takes {spec.modality} input and cannot train on {info.modality} "
                f"dataset {self.dataset!r}; use a {spec.modality} dataset, or a model for {info.modality} such as {info.model!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise HpmlError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise HpmlError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        for name in ("batch_size", "epochs", "accum_steps"):
            if getattr(self, name) < 1:
                raise HpmlError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("steps", "train_size", "test_size", "image_size", "seq_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise HpmlError(f"{name} must be >= 1 when given, got {value}")
        if self.num_workers < 0:
            raise HpmlError(f"num_workers must be >= 0, got {self.num_workers}")
        if not 0 <= self.seed < 2**32:  # numpy's seeds are 32-bit; torch and random take them too
            raise HpmlError(f"seed must be in [0, 2**32), got {self.seed}")
        # `not x > 0` rather than `x <= 0`: NaN fails every comparison, so it is refused too.
        if self.lr is not None and not 0 < self.lr < math.inf:
            raise HpmlError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise HpmlError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < math.inf:
            raise HpmlError(f"momentum must be a finite number >= 0, got {self.momentum}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise HpmlError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs < math.inf:
            raise HpmlError(f"warmup_epochs must be a finite number >= 0, got {self.warmup_epochs}")
        if self.model_preset is not None:
            presets = model_presets(spec)
            if not presets:
                raise HpmlError(f"--model-preset sets a text model's size; {self.model!r} has no presets (leave it out)")
            if self.model_preset not in presets:
                raise HpmlError(f"unknown {self.model} preset {self.model_preset!r}; choose from {', '.join(presets)}")
        if self.synthetic is False and self.data_dir is None and self.dataset != "digits":
            raise HpmlError(f"real {self.dataset} data needs --data-dir (or $HPML_DATA_DIR); or use --synthetic")
        validate_optimizations(self.optimizations, self.device)

    def check_fits_in_memory(self) -> None:
        """Refuse, before allocating, a batch whose activations alone exceed this device's memory. The bound is a
        floor (:func:`hpml.models.activation_floor_bytes`), so it never refuses a batch that fits."""
        from hpml.data import dataset_info
        from hpml.models import activation_floor_bytes

        info = dataset_info(self.dataset)
        samples = min(self.batch_size, self.train_size or info.train_size)
        per_sample = activation_floor_bytes(
            self.model, image_size=self.image_size or info.image_size,
            seq_len=self.seq_len or info.seq_len, preset=self.model_preset,
        )
        need = samples * per_sample
        have = device_memory_bytes(self.device)
        if need > have:
            raise HpmlError(
                f"a batch of {samples} samples needs at least {need / 2**30:.1f} GiB of activations, more than "
                f"the {have / 2**30:.1f} GiB of {self.device} memory; use a smaller --batch-size or --image-size"
            )

    @property
    def effective_lr(self) -> float:
        """The learning rate used: the given one, or :data:`DEFAULT_LR` (SGD: scaled per 128 samples per optimizer step)."""
        if self.lr is not None:
            return self.lr
        base = DEFAULT_LR[self.optimizer]
        if self.optimizer == "sgd":
            return base * self.batch_size * self.effective_accum_steps / 128
        return base

    @property
    def effective_accum_steps(self) -> int:
        return self.accum_steps if "grad_accum" in self.expanded_optimizations else 1

    @property
    def expanded_optimizations(self) -> tuple[str, ...]:
        from hpml.train.optimizations import expand

        return expand(self.optimizations, self.device)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["optimizations"] = list(self.optimizations)
        d["expanded_optimizations"] = list(self.expanded_optimizations)
        d["effective_lr"] = self.effective_lr
        return d
