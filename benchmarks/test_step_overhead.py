"""Harness overhead: hpml's ``train_step`` against a plain hand-written step doing the
same work (the CIFAR-10 ResNet-50, same batch, same optimizer), in fp32 and in bf16
autocast + channels_last.

The hand-written step is the loop every PyTorch user writes: forward under (or without)
autocast, cross-entropy, backward, SGD step, zero_grad.  Rows run in a fixed order
(hand-written first), and each hpml row records ``ratio_vs_handwritten``: its samples/s
over the hand-written row's with the same precision, measured in the same pytest run.
"""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn as nn

from hpml.data import dataset_info
from hpml.measure import synchronize
from hpml.models import create_model
from hpml.train import OptContext, compose, make_state, train_step

PRECISIONS = {"fp32": (), "bf16_channels_last": ("amp_bf16", "channels_last")}
_rates: dict[str, float] = {}


def _batch(batch_size: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, 3, 32, 32, generator=g), torch.randint(0, num_classes, (batch_size,), generator=g)


def _handwritten(model: nn.Module, opts: tuple[str, ...], x: torch.Tensor, y: torch.Tensor):
    channels_last = "channels_last" in opts
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if "amp_bf16" in opts else contextlib.nullcontext

    def step():
        with ctx():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _hpml(model: nn.Module, opts: tuple[str, ...], x: torch.Tensor, y: torch.Tensor):
    state = make_state(model, device="cpu", settings=compose(opts, OptContext("cpu")), lr=0.01)
    return lambda: train_step(state, [(x, y)])


@pytest.mark.parametrize("impl", ["handwritten", "hpml"])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_step_overhead(benchmark, hpml_profile, precision, impl):
    info = dataset_info("cifar10")
    batch_size = hpml_profile.small_image_batch
    torch.manual_seed(0)
    model = create_model("resnet50", num_classes=info.num_classes, image_size=32)
    x, y = _batch(batch_size, info.num_classes)
    step = (_handwritten if impl == "handwritten" else _hpml)(copy.deepcopy(model), PRECISIONS[precision], x, y)

    def call():
        step()
        synchronize("cpu")

    benchmark.group = "overhead:cifar10:cpu"
    benchmark.pedantic(call, rounds=hpml_profile.rounds, warmup_rounds=max(1, hpml_profile.warmup_rounds), iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    rate = batch_size / benchmark.stats.stats.median
    _rates[f"{precision}:{impl}"] = rate
    hand = _rates.get(f"{precision}:handwritten")
    fp32_hand = _rates.get("fp32:handwritten")
    benchmark.extra_info.update(
        phase="overhead", dataset="cifar10", model="resnet50", device="cpu", optimizer="sgd",
        optimization=impl + ":" + precision, batch_size=batch_size, samples_per_s=rate,
        profile=hpml_profile.name, threads=torch.get_num_threads(),
        ratio_vs_handwritten=rate / hand if impl == "hpml" and hand else None,
        speedup_vs_handwritten_fp32=rate / fp32_hand if fp32_hand else None,
    )
