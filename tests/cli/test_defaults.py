"""``hpml train``'s defaults: the measured digits recipe on digits, generic ones elsewhere."""

from __future__ import annotations

import pytest

from hpml.cli import GENERIC_DEFAULTS, build_parser, config_from_args
from hpml.convergence.recipes import DIGITS, DIGITS_32


def config(*argv: str):
    return config_from_args(build_parser().parse_args(["train", "--device", "cpu", *argv]))


@pytest.mark.parametrize("model,recipe", [("resnet18", DIGITS), ("torchvision:resnet18", DIGITS_32)])
def test_digits_takes_its_recipe(model, recipe, capsys) -> None:
    cfg = config("--dataset", "digits", "--model", model)
    for key in GENERIC_DEFAULTS:
        assert getattr(cfg, key) == getattr(recipe, key), key
    assert cfg.schedule == "onecycle" and cfg.label_smoothing > 0  # not the generic constant lr
    assert "defaults from the digits recipe" in capsys.readouterr().out


def test_models_with_an_imagenet_stem_train_digits_at_32_px() -> None:
    assert config("--dataset", "digits", "--model", "torchvision:resnet18").image_size == 32
    assert config("--dataset", "digits", "--model", "resnet18").image_size == 8


def test_explicit_settings_win_over_the_recipe(capsys) -> None:
    cfg = config("--dataset", "digits", "--model", "resnet18", "--lr", "0.3", "--schedule", "constant",
                 "--batch-size", "16", "--image-size", "32", "--label-smoothing", "0", "--warmup-epochs", "0",
                 "--weight-decay", "0")
    assert (cfg.lr, cfg.schedule, cfg.batch_size, cfg.image_size) == (0.3, "constant", 16, 32)
    assert (cfg.label_smoothing, cfg.warmup_epochs, cfg.weight_decay) == (0, 0, 0)
    out, err = capsys.readouterr()
    assert "defaults from" not in out + err  # nothing was filled in


def test_adam_keeps_its_own_learning_rate() -> None:
    cfg = config("--dataset", "digits", "--model", "resnet18", "--optimizer", "adam")
    assert cfg.lr is None and cfg.effective_lr == 1e-3


def test_other_datasets_keep_the_generic_defaults(capsys) -> None:
    cfg = config("--dataset", "cifar10", "--model", "resnet18", "--synthetic")
    for key, value in GENERIC_DEFAULTS.items():
        assert getattr(cfg, key) == value, key
    out, err = capsys.readouterr()
    assert "defaults from" not in out + err
