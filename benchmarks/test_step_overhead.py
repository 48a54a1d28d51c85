"""Harness overhead: hpml's ``train_step`` against a plain hand-written step doing the
same work (the CIFAR-10 ResNet-50, same batch, same optimizer), in fp32 and in bf16
autocast + channels_last.

The hand-written step is the loop every PyTorch user writes: forward under (or without)
autocast, cross-entropy, backward, SGD step, zero_grad.  The hand-written rows are
measured on their own (the reference for trends).  An hpml row also runs the
hand-written step once before each of its rounds (in pedantic's untimed ``setup``, timed
here with a device sync), so the two are measured interleaved, under the same machine
conditions: rows measured one after the other drift apart by more than the overhead
being measured (on the 2-core reference machine, successive fp32 rows differed by up
to 15%).  ``ratio_vs_handwritten`` is hpml's samples/s over the interleaved hand-written
step's (ratio of the medians; > 1 means hpml was faster).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time

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
    opts = PRECISIONS[precision]
    hand = _handwritten(copy.deepcopy(model), opts, x, y)
    step = hand if impl == "handwritten" else _hpml(copy.deepcopy(model), opts, x, y)
    hand_seconds: list[float] = []

    def call():
        step()
        synchronize("cpu")

    def interleaved_handwritten():
        start = time.perf_counter()
        hand()
        synchronize("cpu")
        hand_seconds.append(time.perf_counter() - start)

    warmup = max(1, hpml_profile.warmup_rounds)
    benchmark.group = "overhead:cifar10:cpu"
    benchmark.pedantic(call, setup=interleaved_handwritten if impl == "hpml" else None,
                       rounds=hpml_profile.rounds, warmup_rounds=warmup, iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    median = benchmark.stats.stats.median
    rate = batch_size / median
    _rates[f"{precision}:{impl}"] = rate
    fp32_hand = _rates.get("fp32:handwritten")
    measured_hand = hand_seconds[warmup:]  # setup also ran before each warm-up round
    hand_median = statistics.median(measured_hand) if impl == "hpml" else None
    benchmark.extra_info.update(
        phase="overhead", dataset="cifar10", model="resnet50", device="cpu", optimizer="sgd",
        optimization=impl + ":" + precision, batch_size=batch_size, samples_per_s=rate,
        profile=hpml_profile.name, threads=torch.get_num_threads(),
        handwritten_interleaved_s=measured_hand if impl == "hpml" else None,
        ratio_vs_handwritten=hand_median / median if hand_median else None,
        speedup_vs_handwritten_fp32=rate / fp32_hand if fp32_hand else None,
    )
