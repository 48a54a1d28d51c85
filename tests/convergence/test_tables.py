"""The targets and recipes tables: every target cites its source, every case builds a
valid run config, the matrix covers what hpml promises."""

from __future__ import annotations

import itertools

import pytest

from hpml.convergence import DIGITS_OPTIMIZATIONS, TARGETS, digits_case, list_cases, target_for
from hpml.errors import HpmlError


def test_every_target_names_its_source_and_is_a_fraction():
    for t in TARGETS:
        assert t.source.strip() and 0 < t.value <= 1, t
    keys = [(t.dataset, t.model, t.pretrained, t.optimizer) for t in TARGETS]
    assert len(keys) == len(set(keys)), "two targets for one setting"


@pytest.mark.parametrize(
    ("dataset", "model", "pretrained", "optimizer", "value"),
    [
        ("cifar10", "resnet50", False, "sgd", 0.935),
        ("cifar100", "resnet50", False, "adam", 0.77),
        ("imagenet", "resnet50", False, "sgd", 0.759),
        ("imagenet", "resnet50", True, "adam", 0.7754),
        ("imagenet", "resnet50", True, "sgd", 0.7824),
        ("cifar10", "resnet50", True, "adam", 0.9767),
        ("cifar10", "resnet50", True, "sgd", 0.9746),
        ("cifar100", "resnet50", True, "adam", 0.8607),
        ("cifar100", "resnet50", True, "sgd", 0.8517),
    ],
)
def test_published_targets(dataset, model, pretrained, optimizer, value):
    assert target_for(dataset, model, pretrained=pretrained, optimizer=optimizer).value == value


def test_unmeasured_targets_say_so():
    scratch_text = [t for t in TARGETS if t.model == "xlnet" and not t.pretrained]
    assert scratch_text and all("not yet measured by hpml" in t.source for t in scratch_text)
    assert [t.dataset for t in TARGETS if t.measured_by_hpml] == ["digits"]


def test_unknown_setting_is_a_clear_error():
    with pytest.raises(HpmlError, match="no convergence target for resnet18/cifar10"):
        target_for("cifar10", "resnet18", pretrained=False, optimizer="sgd")


def test_matrix_covers_datasets_optimizers_optimizations_and_weights():
    cases = list_cases()
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    want = {
        (dataset, optimizer, optimization, pretrained)
        for dataset, optimizer, optimization, pretrained in itertools.product(
            ("cifar10", "cifar100", "imagenet", "amazon_polarity", "amazon_full"),
            ("sgd", "adam"), ("baseline", "optimized"), (False, True),
        )
    }
    assert {(c.dataset, c.optimizer, c.optimization, c.pretrained) for c in cases} == want
    assert all(c.needs_gpu for c in cases)
    assert "resnet50-cifar10-sgd-baseline" in names and "xlnet-amazon_full-adam-optimized-pretrained" in names


@pytest.mark.parametrize("case", list_cases(), ids=lambda c: c.name)
def test_every_case_builds_a_valid_config(case):
    cfg = case.run_config(seed=0, device="cpu", data_dir="/nonexistent")
    assert (cfg.model, cfg.dataset, cfg.optimizer, cfg.synthetic) == (case.model, case.dataset, case.optimizer, False)
    assert cfg.epochs == case.recipe.epochs and cfg.lr == case.recipe.lr


@pytest.mark.parametrize("optimization", DIGITS_OPTIMIZATIONS)
def test_grad_accum_keeps_the_samples_per_optimizer_step(optimization):
    cfg = digits_case(optimization).run_config(seed=0, device="cpu")
    assert cfg.batch_size * cfg.effective_accum_steps == digits_case().recipe.batch_size


def test_a_digits_case_can_name_any_image_model():
    case = digits_case("optimized", model="torchvision:resnet18")
    cfg = case.run_config(seed=0, device="cpu")
    assert (cfg.model, cfg.image_size) == ("torchvision:resnet18", 32)  # an ImageNet stem needs 32 px
    assert case.target == digits_case("optimized").target and case.name.startswith("torchvision:resnet18-digits")
