"""The benchmark profile registry."""

from __future__ import annotations

import dataclasses

import pytest

from hpml.bench.profiles import FIXED_PAIRS_ENV, PROFILE_ENV, PROFILES, Profile, default_profile_name, get_profile, list_profiles
from hpml.data import dataset_info
from hpml.errors import HpmlError


def test_registry_holds_the_three_profiles_in_size_order():
    assert list_profiles() == ["smoke", "cpu", "standard", "full"]
    sizes = [get_profile(n).large_image_batch * (get_profile(n).large_image_size or 224) ** 2 for n in list_profiles()]
    assert sizes == sorted(sizes)


def test_unknown_profile_names_the_registered_ones():
    with pytest.raises(HpmlError, match="unknown benchmark profile 'huge'; choose from smoke, cpu, standard, full"):
        get_profile("huge")


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("smoke").rounds = 100  # type: ignore[misc]


def test_smoke_sizes_follow_the_dataset():
    smoke = get_profile("smoke")
    assert smoke.batch_size(dataset_info("cifar10")) == smoke.small_image_batch
    assert smoke.batch_size(dataset_info("amazon_polarity")) == smoke.text_batch
    # ImageNet is shrunk but stays above the CIFAR-stem limit (64 px) of hpml's ResNet
    assert 64 < smoke.image_size(dataset_info("imagenet")) < 224
    assert smoke.image_size(dataset_info("cifar10")) == 32
    assert smoke.image_size(dataset_info("amazon_full")) is None
    assert smoke.sequence_length(dataset_info("amazon_full")) == smoke.seq_len
    assert smoke.model_preset(dataset_info("amazon_full")) == "tiny"
    assert smoke.model_preset(dataset_info("cifar10")) is None


def test_full_uses_the_real_training_sizes():
    full = get_profile("full")
    assert full.image_size(dataset_info("imagenet")) == 224
    assert full.text_preset == "base" and full.sequence_length(dataset_info("amazon_polarity")) == 512
    assert full.batch_size(dataset_info("cifar10")) >= 128


def test_a_large_image_side_below_the_cifar_stem_limit_is_refused():
    smoke = get_profile("smoke")
    with pytest.raises(HpmlError, match="CIFAR stem"):
        dataclasses.replace(smoke, name="bad", large_image_size=64)
    with pytest.raises(HpmlError, match="rounds must be >= 1"):
        dataclasses.replace(smoke, name="bad", rounds=0)


def test_default_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert default_profile_name() == "full"
    monkeypatch.delenv(PROFILE_ENV)
    assert default_profile_name() in ("smoke", "standard")


def test_every_profile_is_a_profile():
    assert all(isinstance(PROFILES.get(n), Profile) for n in PROFILES)


@pytest.mark.parametrize("field", ["target_halfwidth", "row_budget_s"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf")])
def test_precision_target_and_budget_must_be_positive(field, value):
    import dataclasses

    from hpml.errors import HpmlError

    with pytest.raises(HpmlError, match=f"{field} must be a number > 0"):
        dataclasses.replace(get_profile("smoke"), **{field: value})


def test_profiles_tighten_precision_with_size():
    targets = {name: get_profile(name).target_halfwidth for name in ("smoke", "cpu", "standard", "full")}
    assert targets == {"smoke": 0.05, "cpu": 0.02, "standard": 0.02, "full": 0.01}


def test_fixed_pairs_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(FIXED_PAIRS_ENV, raising=False)
    assert get_profile("smoke").precision().fixed_pairs is None  # adaptive by default
    monkeypatch.setenv(FIXED_PAIRS_ENV, "12")
    assert get_profile("smoke").precision().fixed_pairs == 12
    for bad in ("0", "-3", "ten", "1.5"):
        monkeypatch.setenv(FIXED_PAIRS_ENV, bad)
        with pytest.raises(HpmlError, match=FIXED_PAIRS_ENV):
            get_profile("smoke").precision()
