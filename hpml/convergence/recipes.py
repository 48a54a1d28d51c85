"""Training recipes for convergence runs and the case matrix. A recipe ignores the optimization set,
so an accuracy difference between ``baseline`` and ``optimized`` is the optimization's doing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpml.convergence.targets import Target, target_for
from hpml.errors import HpmlError
from hpml.train.run_config import RunConfig

CIFAR_AUG = "random crop (4 px zero padding) + horizontal flip (hpml.data.transforms.PadCropFlip)"
DIGITS_AUG = "random crop (side/8 zero padding: 1 px at 8 px), no flip: a mirrored digit changes class (hpml.data.digits)"
IMAGENET_AUG = "random-resized crop + horizontal flip; test: resize + center crop (hpml.data.transforms)"
UPSAMPLED_AUG = CIFAR_AUG + ", on images resized to 224 px so the pretrained ImageNet stem is kept"
TEXT_AUG = "none (reviews truncated to seq_len tokens, XLNet-style left padding)"


@dataclass(frozen=True)
class Recipe:
    """How one convergence run trains; lr is the schedule's peak for ``batch_size`` samples per optimizer step."""

    epochs: int
    batch_size: int
    lr: float
    schedule: str  # "onecycle" (linear up, linear down) or "cosine"
    warmup_epochs: float
    label_smoothing: float
    weight_decay: float  # L2, coupled (torch SGD/Adam weight_decay)
    basis: str
    augmentation: str
    momentum: float = 0.9  # SGD: Nesterov momentum (hpml.train.state.make_optimizer)
    image_size: int | None = None  # None: the dataset's native size
    seq_len: int | None = None  # None: the dataset's default
    train_size: int | None = None  # None: the whole training split
    model_preset: str | None = None  # xlnet architecture when training from scratch
    accum_steps: int = 4  # micro-batches per step when `grad_accum` is in the optimizations
    measured: bool = False  # True once hpml has run this recipe to its target

    def __post_init__(self) -> None:
        if self.batch_size % self.accum_steps:
            raise HpmlError(f"recipe batch_size {self.batch_size} must be divisible by accum_steps {self.accum_steps}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ConvergenceCase:
    """One convergence test: train ``model`` on ``dataset`` with ``recipe`` until ``target``."""

    dataset: str
    model: str
    optimizer: str
    optimization: str  # "baseline", "optimized" or a registered one
    pretrained: bool
    recipe: Recipe
    target: Target
    needs_gpu: bool  # days on a CPU: run only where CUDA is available

    @property
    def name(self) -> str:
        """``resnet50-cifar10-sgd-baseline`` (+ ``-pretrained``): record and test id."""
        return "-".join([self.model, self.dataset, self.optimizer, self.optimization]) + (
            "-pretrained" if self.pretrained else ""
        )

    def run_config(
        self,
        *,
        seed: int,
        device: str = "auto",
        data_dir: str | Path | None = None,
        weights: str | Path | None = None,
        tokenizer: str | Path | None = None,
    ) -> RunConfig:
        """The :class:`RunConfig` of one seed. ``grad_accum`` splits ``batch_size`` into micro-batches, so each
        optimizer step, the lr and the step count stay the baseline's."""
        r = self.recipe
        accum = "grad_accum" in self.optimization.split("+")
        return RunConfig(
            model=self.model,
            dataset=self.dataset,
            device=device,
            batch_size=r.batch_size // r.accum_steps if accum else r.batch_size,
            accum_steps=r.accum_steps,
            optimizer=self.optimizer,
            lr=r.lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            schedule=r.schedule,
            warmup_epochs=r.warmup_epochs,
            label_smoothing=r.label_smoothing,
            epochs=r.epochs,
            seed=seed,
            optimizations=tuple(self.optimization.split("+")),
            model_preset=r.model_preset,
            image_size=r.image_size,
            seq_len=r.seq_len,
            train_size=r.train_size,
            data_dir=None if data_dir is None else str(data_dir),
            synthetic=False,  # convergence is about real data; never a synthetic twin
            weights=None if weights is None else str(weights),
            tokenizer=None if tokenizer is None else str(tokenizer),
        )


# --- the recipes -------------------------------------------------------------------------
# Keyed by (dataset, model, pretrained, optimizer).  SGD learning rates follow the linear
# scaling rule from 0.1 per 128 samples (Goyal et al. 2017, arXiv:1706.02677).

_ONECYCLE_CIFAR = (
    "one-cycle schedule (Smith & Topin 2017, super-convergence) as in the DAWNBench/airbench "
    "CIFAR-10 entries (Page 2018: ResNet-9 to 94% in 24 epochs; Jordan 2024, airbench), "
    "applied to kuangliu/pytorch-cifar's ResNet-50 (93.62% after 200 cosine epochs at lr 0.1/bs 128)"
)
RECIPES: dict[tuple[str, str, bool, str], Recipe] = {
    ("cifar10", "resnet50", False, "sgd"): Recipe(
        epochs=40, batch_size=512, lr=0.4, schedule="onecycle", warmup_epochs=8, label_smoothing=0.1,
        weight_decay=5e-4, basis=_ONECYCLE_CIFAR + "; lr 0.4 = 0.1 x 512/128", augmentation=CIFAR_AUG,
    ),
    ("cifar10", "resnet50", False, "adam"): Recipe(
        epochs=40, batch_size=512, lr=2e-3, schedule="onecycle", warmup_epochs=8, label_smoothing=0.1,
        weight_decay=1e-4, augmentation=CIFAR_AUG,
        basis=_ONECYCLE_CIFAR + "; Adam at 1e-3 per 256 samples.  Adam usually ends 0.5-1 pp under SGD on "
        "CIFAR ResNets (Wilson et al. 2017, arXiv:1705.08292): this case tests whether it still meets the target",
    ),
    ("cifar100", "resnet50", False, "sgd"): Recipe(
        epochs=60, batch_size=512, lr=0.4, schedule="cosine", warmup_epochs=3, label_smoothing=0.1,
        weight_decay=5e-4, augmentation=CIFAR_AUG,
        basis="weiaicunzai/pytorch-cifar100 (200 epochs, lr 0.1/bs 128, step decay, 1 warm-up epoch: 77.39%) "
        "compressed to 60 cosine epochs with label smoothing; lr 0.4 = 0.1 x 512/128",
    ),
    ("cifar100", "resnet50", False, "adam"): Recipe(
        epochs=60, batch_size=512, lr=2e-3, schedule="cosine", warmup_epochs=3, label_smoothing=0.1,
        weight_decay=1e-4, augmentation=CIFAR_AUG,
        basis="the CIFAR-100 SGD recipe with Adam at 1e-3 per 256 samples",
    ),
    ("imagenet", "resnet50", False, "sgd"): Recipe(
        epochs=45, batch_size=256, lr=0.256, momentum=0.875, weight_decay=3.0517578125e-05,
        schedule="cosine", warmup_epochs=5, label_smoothing=0.1, augmentation=IMAGENET_AUG,
        basis="NVIDIA DeepLearningExamples ResNet-50 v1.5 hyper-parameters (lr 0.256 per 256, momentum "
        "0.875, wd 1/32768, cosine, label smoothing 0.1) with Goyal et al.'s 5 warm-up epochs, shortened "
        "to 45 epochs on one GPU",
    ),
    ("imagenet", "resnet50", False, "adam"): Recipe(
        epochs=45, batch_size=256, lr=1e-3, weight_decay=1e-5, schedule="cosine", warmup_epochs=5,
        label_smoothing=0.1, augmentation=IMAGENET_AUG,
        basis="the ImageNet SGD recipe with Adam at 1e-3; Adam is known to generalize worse on "
        "ImageNet ResNets (Wilson et al. 2017), so this case may miss 75.9%: that is a finding, not a harness bug",
    ),
    # Fine-tuning from ImageNet weights: small lr, a few epochs, the 224 px ImageNet stem kept.
    ("cifar10", "resnet50", True, "sgd"): Recipe(
        epochs=10, batch_size=128, lr=0.01, schedule="cosine", warmup_epochs=1, label_smoothing=0.1,
        weight_decay=5e-4, image_size=224, augmentation=UPSAMPLED_AUG,
        basis="standard transfer-learning fine-tune (Kornblith et al. 2019, 'Do Better ImageNet Models "
        "Transfer Better?': SGD, lr ~0.01, images upsampled to 224 px); the seed project's settings",
    ),
    ("cifar10", "resnet50", True, "adam"): Recipe(
        epochs=10, batch_size=128, lr=1e-4, schedule="cosine", warmup_epochs=1, label_smoothing=0.1,
        weight_decay=0.0, image_size=224, augmentation=UPSAMPLED_AUG,
        basis="the SGD fine-tune with Adam at 1e-4 (10x under its from-scratch rate)",
    ),
    ("cifar100", "resnet50", True, "sgd"): Recipe(
        epochs=15, batch_size=128, lr=0.01, schedule="cosine", warmup_epochs=1, label_smoothing=0.1,
        weight_decay=5e-4, image_size=224, augmentation=UPSAMPLED_AUG,
        basis="the CIFAR-10 fine-tune, 15 epochs for 10x the classes",
    ),
    ("cifar100", "resnet50", True, "adam"): Recipe(
        epochs=15, batch_size=128, lr=1e-4, schedule="cosine", warmup_epochs=1, label_smoothing=0.1,
        weight_decay=0.0, image_size=224, augmentation=UPSAMPLED_AUG,
        basis="the CIFAR-10 Adam fine-tune, 15 epochs for 10x the classes",
    ),
    ("imagenet", "resnet50", True, "sgd"): Recipe(
        epochs=2, batch_size=256, lr=0.004, schedule="cosine", warmup_epochs=0, label_smoothing=0.1,
        weight_decay=3.0517578125e-05, momentum=0.875, augmentation=IMAGENET_AUG,
        basis="weights already trained on ImageNet: a short low-lr (1/64 of the from-scratch peak) fine-tune "
        "that must keep the seed's accuracy",
    ),
    ("imagenet", "resnet50", True, "adam"): Recipe(
        epochs=2, batch_size=256, lr=1e-5, schedule="cosine", warmup_epochs=0, label_smoothing=0.1,
        weight_decay=0.0, augmentation=IMAGENET_AUG,
        basis="as the SGD ImageNet fine-tune, Adam at 1e-5",
    ),
}

# XLNet fine-tuning follows BERT/XLNet practice (Adam ~2e-5, 10% linear warm-up then decay: hpml's
# `onecycle`, ~10k steps); SGD's rate is a guess to be measured.
_XLNET_FT = (
    "BERT/XLNet fine-tuning practice (Devlin et al. 2019; Yang et al. 2019): lr 2e-5, linear warm-up "
    "over 10% then linear decay (= hpml onecycle), 12.5k steps of 32 reviews on a 400k-review subset"
)
_XLNET_SCRATCH = (
    "xlnet base shape trained from scratch with hpml's SentencePiece tokenizer: Adam 3e-4 with "
    "warm-up and linear decay, as for small transformers trained from scratch"
)
for _dataset in ("amazon_polarity", "amazon_full"):
    RECIPES[(_dataset, "xlnet", True, "adam")] = Recipe(
        epochs=1, batch_size=32, lr=2e-5, schedule="onecycle", warmup_epochs=0.1, label_smoothing=0.0,
        weight_decay=0.0, train_size=400_000, augmentation=TEXT_AUG, basis=_XLNET_FT,
    )
    RECIPES[(_dataset, "xlnet", True, "sgd")] = Recipe(
        epochs=1, batch_size=32, lr=5e-3, schedule="onecycle", warmup_epochs=0.1, label_smoothing=0.0,
        weight_decay=0.0, train_size=400_000, augmentation=TEXT_AUG,
        basis=_XLNET_FT + "; SGD (Nesterov 0.9) at 5e-3: unmeasured",
    )
    RECIPES[(_dataset, "xlnet", False, "adam")] = Recipe(
        epochs=2, batch_size=64, lr=3e-4, schedule="onecycle", warmup_epochs=0.1, label_smoothing=0.0,
        weight_decay=0.0, model_preset="base", augmentation=TEXT_AUG, basis=_XLNET_SCRATCH,
    )
    RECIPES[(_dataset, "xlnet", False, "sgd")] = Recipe(
        epochs=2, batch_size=64, lr=0.05, schedule="onecycle", warmup_epochs=0.1, label_smoothing=0.0,
        weight_decay=0.0, model_preset="base", augmentation=TEXT_AUG,
        basis=_XLNET_SCRATCH + "; SGD (Nesterov 0.9) at 0.05: unmeasured",
    )

#: digits, measured by hpml on a 2-core CPU, at 8 px: the digits are 8x8 images, so 8 px loses
#: nothing and costs 1/16 of the 32 px FLOPs.
DIGITS = Recipe(
    epochs=3, batch_size=64, lr=0.02, schedule="onecycle", warmup_epochs=0.5, label_smoothing=0.1,
    weight_decay=5e-4, image_size=8, augmentation=DIGITS_AUG, measured=True,
    basis="the CIFAR one-cycle recipe shrunk to 1437 training images at their native 8 px, 3 epochs "
    "(69 steps); lr measured on CPU (4 epochs, seed 0): 0.01 and 0.02 reach 98%, 0.05 97%, 0.1 66% "
    "(its first-epoch loss spikes above ln 10)",
)

#: The GPU matrix: every registered recipe x these optimization sets.
OPTIMIZATION_SETS = ("baseline", "optimized")
#: The CPU digits sweep: each must keep baseline's accuracy (see hpml.convergence.run.within_spread).
DIGITS_OPTIMIZATIONS = ("baseline", "optimized", "amp_bf16", "channels_last", "grad_accum")


def make_case(
    dataset: str, model: str, optimizer: str, optimization: str, *, pretrained: bool = False,
    recipe: Recipe | None = None, needs_gpu: bool | None = None,
) -> ConvergenceCase:
    """A case from the tables (``recipe``/``needs_gpu`` override them, e.g. for digits)."""
    if recipe is None:
        try:
            recipe = RECIPES[(dataset, model, pretrained, optimizer)]
        except KeyError:
            known = ", ".join("/".join(map(str, k)) for k in RECIPES)
            raise HpmlError(f"no recipe for {dataset}/{model}/pretrained={pretrained}/{optimizer}; known: {known}") from None
    target = target_for(dataset, model, pretrained=pretrained, optimizer=optimizer)
    gpu = dataset != "digits" if needs_gpu is None else needs_gpu
    return ConvergenceCase(dataset, model, optimizer, optimization, pretrained, recipe, target, gpu)


def list_cases() -> list[ConvergenceCase]:
    """The GPU convergence matrix: every recipe x :data:`OPTIMIZATION_SETS`, in table order."""
    return [
        make_case(dataset, model, optimizer, optimization, pretrained=pretrained)
        for (dataset, model, pretrained, optimizer) in RECIPES
        for optimization in OPTIMIZATION_SETS
    ]


#: DIGITS for other image models: 32 px, as an ImageNet stem shrinks 8 px to 2 px, and a higher
#: peak lr (DIGITS' 0.02 left timm:resnet18 at 82 % after 3 epochs).
DIGITS_32 = dataclasses.replace(
    DIGITS, image_size=32, lr=0.05, measured=True,
    basis="DIGITS at 32 px; lr measured on CPU with timm:resnet18 (3 epochs, seed 0, `hpml train --model "
    "timm:resnet18 --dataset digits --epochs 3 --lr X`, loaded machine): 0.02 reaches 82 %, 0.03 88 %, "
    "0.05 96 %, 0.1 97.5 %, 0.2 94 %; 0.05 for 5 epochs 99 %. Through the convergence suite at 0.05 "
    "(`pytest -m convergence -k named_model`): timm:resnet18 96.4 %, torchvision:resnet18 95.0 % "
    "(97.8 % at 0.02)",
)


def training_defaults(dataset: str, model: str) -> Recipe | None:
    """The recipe ``hpml train`` takes unset settings from: :data:`DIGITS` (ResNet-18) or :data:`DIGITS_32`
    (other image models) on digits; None elsewhere."""
    if dataset != "digits":
        return None
    return DIGITS if model == "resnet18" else DIGITS_32


def digits_case(optimization: str = "optimized", model: str = "resnet18") -> ConvergenceCase:
    """The CPU-sized real-data case on digits with SGD: ResNet-18 with :data:`DIGITS`, or any image model
    with :data:`DIGITS_32`, held to the same target."""
    if model == "resnet18":
        return make_case("digits", "resnet18", "sgd", optimization, recipe=DIGITS)
    case = make_case("digits", "resnet18", "sgd", optimization, recipe=DIGITS_32)
    return dataclasses.replace(case, model=model)
