"""The optimization catalogue: composition, device rules, conflicts."""

from __future__ import annotations

import pytest
import torch

from hpml.errors import HpmlError
from hpml.train import OPTIMIZATIONS, OPTIMIZED, OptContext, Settings, compose, expand, list_optimizations
from hpml.train.optimizations import validate_optimizations

EXPECTED = {
    "baseline", "amp", "amp_bf16", "amp_fp16", "channels_last", "compile", "grad_accum", "pin_memory",
    "workers", "fused_optimizer", "foreach_optimizer", "cudnn_benchmark", "tf32", "host_allocator", "device_loader", "optimized",
}


def test_catalogue_holds_every_named_optimization():
    assert EXPECTED <= set(list_optimizations())


def test_baseline_is_the_default_settings():
    assert compose(["baseline"], OptContext("cpu")) == Settings()


@pytest.mark.parametrize("name", list_optimizations())
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_each_optimization_applies_or_says_why(name, device):
    """Every entry either changes the settings on a device it applies to, or refuses
    with a reason naming itself (never a silent no-op, except baseline)."""
    opt = OPTIMIZATIONS.get(name)
    reason = opt.unavailable_reason(device) if not opt.composite else None
    if device == "cuda" and name in ("amp_bf16",) and not torch.cuda.is_available():
        pytest.skip("bf16 support on CUDA can only be checked with a GPU")
    if reason:
        with pytest.raises(HpmlError, match=name):
            compose([name], OptContext(device))
        return
    settings = compose([name], OptContext(device))
    if name == "baseline":
        assert settings == Settings()
    else:
        assert settings != Settings(), f"{name} changed nothing on {device}"


def test_amp_is_fp16_with_scaler_on_cuda_and_bf16_on_cpu():
    cpu = compose(["amp"], OptContext("cpu"))
    cuda = compose(["amp"], OptContext("cuda"))
    assert (cpu.autocast_dtype, cpu.grad_scaler) == (torch.bfloat16, False)
    assert (cuda.autocast_dtype, cuda.grad_scaler) == (torch.float16, True)


def test_fp16_autocast_on_cpu_is_refused():
    with pytest.raises(HpmlError, match="amp_fp16 applies only to cuda"):
        validate_optimizations(["amp_fp16"], "cpu")


@pytest.mark.parametrize("pair", [("amp", "amp_bf16"), ("workers", "device_loader")])
def test_conflicting_pairs_are_refused(pair):
    with pytest.raises(HpmlError, match="cannot be combined"):
        validate_optimizations(list(pair), "cpu")


def test_unknown_optimization_lists_the_registered_ones():
    with pytest.raises(HpmlError, match="unknown optimization 'warp_drive'; registered: baseline"):
        validate_optimizations(["warp_drive"], "cpu")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_optimized_expands_to_the_documented_members(device, monkeypatch):
    import hpml.machine

    monkeypatch.setattr(hpml.machine, "cpu_has_bf16", lambda: True)  # the documented machine: native bf16
    assert expand(["optimized"], device) == OPTIMIZED[device]
    if device == "cpu":
        validate_optimizations(["optimized"], device)  # every member applies on its device


def test_grad_accum_and_workers_take_their_counts_from_the_context():
    s = compose(["grad_accum", "workers"], OptContext("cpu", accum_steps=3, num_workers=5))
    assert (s.accum_steps, s.num_workers, s.persistent_workers, s.prefetch_factor) == (3, 5, True, 2)


def test_the_registries_are_listed_at_the_top_level():
    import hpml

    assert "cifar10" in hpml.list_datasets() and "resnet50" in hpml.list_models()
    assert hpml.list_optimizations() == list_optimizations()
    assert hpml.create_dataset("cifar10", "test", size=2)[0][0].shape == (3, 32, 32)


def test_fused_and_foreach_optimizers_are_separate_and_exclusive():
    assert compose(["fused_optimizer"], OptContext("cpu")).fused_optimizer
    assert compose(["foreach_optimizer"], OptContext("cpu")).foreach_optimizer
    with pytest.raises(HpmlError, match="cannot be combined"):
        validate_optimizations(["fused_optimizer", "foreach_optimizer"], "cpu")
    assert "for-loop" in OPTIMIZATIONS.get("fused_optimizer").description


def test_optimized_leaves_out_bf16_on_a_cpu_without_native_bf16(monkeypatch):
    """bf16 autocast is emulated (a slowdown) on a CPU without AVX512-BF16/AMX: `optimized`
    means "the best here", so it drops the member; asked for by name it still runs."""
    import hpml.machine
    from hpml.train.optimizations import expand, validate_optimizations

    monkeypatch.setattr(hpml.machine, "cpu_has_bf16", lambda: False)
    assert "amp_bf16" not in expand(("optimized",), "cpu")
    assert "channels_last" in expand(("optimized",), "cpu")
    validate_optimizations(("amp_bf16",), "cpu")  # no error: named on its own, it runs
    monkeypatch.setattr(hpml.machine, "cpu_has_bf16", lambda: True)
    assert "amp_bf16" in expand(("optimized",), "cpu")
