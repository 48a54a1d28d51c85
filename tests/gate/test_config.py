"""``[tool.hpml.gate]``: defaults, wildcard precedence, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpml.errors import HpmlError
from hpml.gate.config import DEFAULT_TOLERANCE, GateConfig, find_pyproject, load_gate_config
from hpml.results.schema import CaseKey

TABLE = """
[project]
name = "x"

[tool.hpml.gate]
tolerance = 0.2
alpha = 0.01
min_effect = 0.08
test = "mannwhitney"
repeats = 5
pairs = 12
bench_args = "benchmarks -k 'train and baseline'"

[tool.hpml.gate.min_speedup]
"train:*:cpu:amp_bf16" = 1.8
"train:cifar10:cpu:amp_bf16" = { min = 2.2, tolerance = 0.3 }
"*:*:*:amp_bf16" = 1.1
"""


def key(phase: str, dataset: str, device: str, optimization: str) -> CaseKey:
    return CaseKey(phase, dataset, "resnet50", device, "sgd", optimization)


def test_no_pyproject_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    config = load_gate_config(start=tmp_path)
    assert config.tolerance == DEFAULT_TOLERANCE and config.expectations == ()
    assert config.expectation_for(key("train", "cifar10", "cpu", "amp_bf16")) is None


def test_table_is_read_from_the_nearest_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_pyproject(sub) == tmp_path / "pyproject.toml"
    config = load_gate_config(start=sub)
    assert (config.tolerance, config.alpha, config.min_effect, config.test, config.repeats, config.pairs) == \
        (0.2, 0.01, 0.08, "mannwhitney", 5, 12)
    assert config.bench_args == ("benchmarks", "-k", "train and baseline")


def test_most_specific_pattern_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    config = load_gate_config(start=tmp_path)
    exact = config.expectation_for(key("train", "cifar10", "cpu", "amp_bf16"))
    assert exact is not None and exact.min_speedup == 2.2 and config.tolerance_for(exact) == 0.3
    other = config.expectation_for(key("train", "imagenet", "cpu", "amp_bf16"))
    assert other is not None and other.min_speedup == 1.8 and config.tolerance_for(other) == 0.2
    inference = config.expectation_for(key("inference", "cifar10", "cuda", "amp_bf16"))
    assert inference is not None and inference.min_speedup == 1.1
    assert config.expectation_for(key("train", "cifar10", "cpu", "channels_last")) is None
    assert config.expectation_for(CaseKey(name="test_plain")) is None  # foreign rows are never gated


@pytest.mark.parametrize(
    "body, message",
    [
        ("tolerence = 0.1", "unknown key"),
        ("tolerance = 1.5", "tolerance must be in"),
        ("alpha = 0", "alpha must be in"),
        ("test = 'ttest'", "test must be one of"),
        ("repeats = 0", "repeats must be >= 3"),
        ("repeats = 2", "repeats must be >= 3"),  # 33.21: refused before any session, not after them
        ("repeats = 1.5", "repeats must be an integer"),
        ("pairs = 0", "pairs must be >= 1"),
        ("pairs = '10'", "pairs must be an integer"),
        ("bench_args = 3", "bench_args must be"),
        ('[tool.hpml.gate.min_speedup]\n"train:cpu:amp_bf16" = 1.5', "must have the form"),
        ('[tool.hpml.gate.min_speedup]\n"training:*:cpu:amp_bf16" = 1.5', "phase 'training'"),
        ('[tool.hpml.gate.min_speedup]\n"train:*:tpu:amp_bf16" = 1.5', "device 'tpu'"),
        ('[tool.hpml.gate.min_speedup]\n"train:*:cpu:amp_bf16" = -1', "positive speedup"),
        ('[tool.hpml.gate.min_speedup]\n"train:*:cpu:amp_bf16" = { minimum = 2 }', "must be a number or"),
        ('[tool.hpml.gate.min_speedup]\n"train:*:cpu:amp_bf16" = "fast"', "must be a number"),
    ],
)
def test_bad_table_is_one_line_error(tmp_path: Path, body: str, message: str) -> None:
    header = "" if body.startswith("[") else "[tool.hpml.gate]\n"
    (tmp_path / "pyproject.toml").write_text(header + body + "\n")
    with pytest.raises(HpmlError, match=message) as err:
        load_gate_config(start=tmp_path)
    assert "\n" not in str(err.value)


def test_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hpml.gate\n")
    with pytest.raises(HpmlError, match="cannot parse TOML"):
        load_gate_config(start=tmp_path)


def test_overrides_are_validated() -> None:
    with pytest.raises(HpmlError, match="min_effect"):
        GateConfig(min_effect=-0.1)


def test_patterns_may_name_the_model_between_dataset_and_device():
    from hpml.gate.config import Expectation, split_pattern
    from hpml.results.schema import CaseKey

    assert split_pattern("train:*:cpu:amp_bf16") == ("train", "*", "*", "cpu", "amp_bf16")
    assert split_pattern("train:cifar10:timm:resnet18:cpu:amp_bf16") == (
        "train", "cifar10", "timm:resnet18", "cpu", "amp_bf16")
    timm_row = CaseKey("train", "cifar10", "timm:resnet18", "cpu", "sgd", "amp_bf16")
    own_row = CaseKey("train", "cifar10", "resnet50", "cpu", "sgd", "amp_bf16")
    named = Expectation("train:cifar10:timm:resnet18:cpu:amp_bf16", 1.3)
    assert named.matches(timm_row) and not named.matches(own_row)
    assert Expectation("train:cifar10:cpu:amp_bf16", 1.3).matches(timm_row)  # no model field: any model
    assert named.literal_fields > Expectation("train:cifar10:cpu:amp_bf16", 1.3).literal_fields
