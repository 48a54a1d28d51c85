"""Interleaved comparisons of whole training steps (the CIFAR-10 ResNet-50 on CPU).

Rows measured one after the other drift apart on a small machine by more than the
effects measured here (on the 2-core reference machine, rows timing the same fp32 step
differed by up to 20% within one session).  So each comparison row runs its reference
step once before each of its rounds (in pedantic's untimed ``setup``, timed here with a
device sync): the two are measured interleaved, under the same machine conditions, and
the ratio of their medians is recorded.

* ``test_step_overhead``: hpml's ``train_step`` against a plain hand-written step doing
  the same work (same batch, same optimizer), in fp32 and in bf16 autocast +
  channels_last.  The hand-written step is the loop every PyTorch user writes: forward
  under (or without) autocast, cross-entropy, backward, SGD step, zero_grad.  The
  hand-written rows are also measured on their own (the reference for trends).  An hpml
  row records ``ratio_vs_handwritten``: hpml's samples/s over the interleaved
  hand-written step's (> 1 means hpml was faster).
* ``test_precision_speedup``: the bf16 autocast + channels_last step against the fp32
  step, interleaved, hand-written and hpml's: ``speedup_vs_fp32``.  The two rows show
  whether hpml keeps the speedup a hand-written loop gets.  hpml's is the CPU
  ``optimized`` without ``host_allocator``, which changes the process for good and so
  cannot be interleaved with a default-allocator step; its own effect is the
  ``host_allocator`` train row.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from typing import Callable

import pytest
import torch
import torch.nn as nn

from hpml.data import dataset_info
from hpml.bench.harness import planted_slowdown, timed_call
from hpml.models import create_model
from hpml.train import OptContext, compose, make_state, train_step

PRECISIONS = {"fp32": (), "bf16_channels_last": ("amp_bf16", "channels_last")}
GROUP = "overhead:cifar10:cpu"
_rates: dict[str, float] = {}

Step = Callable[[], object]


def _batch(batch_size: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, 3, 32, 32, generator=g), torch.randint(0, num_classes, (batch_size,), generator=g)


def _handwritten(model: nn.Module, opts: tuple[str, ...], x: torch.Tensor, y: torch.Tensor) -> Step:
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


def _hpml(model: nn.Module, opts: tuple[str, ...], x: torch.Tensor, y: torch.Tensor) -> Step:
    state = make_state(model, device="cpu", settings=compose(opts, OptContext("cpu")), lr=0.01)
    return lambda: train_step(state, [(x, y)])


def _synced(step: Step) -> Step:
    return timed_call(step, "cpu", planted_slowdown())  # every measured call goes through the harness


def _measure(benchmark, profile, step: Step, reference: Step | None = None) -> list[float]:
    """Measure ``step`` with pytest-benchmark; with ``reference``, also run it (timed here)
    before every round.  Returns the reference's seconds for the measured rounds."""
    seconds: list[float] = []

    def run_reference():
        start = time.perf_counter()
        reference()
        seconds.append(time.perf_counter() - start)

    warmup = max(1, profile.warmup_rounds)
    benchmark.group = GROUP
    benchmark.pedantic(_synced(step), setup=run_reference if reference else None,
                       rounds=profile.rounds, warmup_rounds=warmup, iterations=1)
    return seconds[warmup:]  # setup also ran before each warm-up round


def _model_and_batch(batch_size: int):
    info = dataset_info("cifar10")
    torch.manual_seed(0)
    model = create_model("resnet50", num_classes=info.num_classes, image_size=32)
    return model, _batch(batch_size, info.num_classes)


def _info(hpml_profile, name: str, batch_size: int, rate: float) -> dict:
    return dict(phase="overhead", dataset="cifar10", model="resnet50", device="cpu", optimizer="sgd",
                optimization=name, batch_size=batch_size, samples_per_s=rate, profile=hpml_profile.name,
                threads=torch.get_num_threads())


@pytest.mark.parametrize("impl", ["handwritten", "hpml"])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_step_overhead(benchmark, hpml_profile, precision, impl):
    batch_size = hpml_profile.small_image_batch
    model, (x, y) = _model_and_batch(batch_size)
    opts = PRECISIONS[precision]
    hand = _handwritten(copy.deepcopy(model), opts, x, y)
    if impl == "handwritten":
        _measure(benchmark, hpml_profile, hand)
    else:
        hand_seconds = _measure(benchmark, hpml_profile, _hpml(copy.deepcopy(model), opts, x, y), _synced(hand))
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    median = benchmark.stats.stats.median
    rate = batch_size / median
    _rates[f"{precision}:{impl}"] = rate
    fp32_hand = _rates.get("fp32:handwritten")
    info = _info(hpml_profile, f"{impl}:{precision}", batch_size, rate)
    info["speedup_vs_handwritten_fp32"] = rate / fp32_hand if fp32_hand else None  # separate rows
    if impl == "hpml":
        info["handwritten_interleaved_s"] = hand_seconds
        info["ratio_vs_handwritten"] = statistics.median(hand_seconds) / median
    benchmark.extra_info.update(info)


@pytest.mark.parametrize("impl", ["handwritten", "hpml"])
def test_precision_speedup(benchmark, hpml_profile, impl):
    batch_size = hpml_profile.small_image_batch
    model, (x, y) = _model_and_batch(batch_size)
    make = _handwritten if impl == "handwritten" else _hpml
    fast = make(copy.deepcopy(model), PRECISIONS["bf16_channels_last"], x, y)
    fp32_seconds = _measure(benchmark, hpml_profile, fast, _synced(make(copy.deepcopy(model), (), x, y)))
    if benchmark.stats is None:
        return
    median = benchmark.stats.stats.median
    info = _info(hpml_profile, f"{impl}:bf16_channels_last_vs_fp32", batch_size, batch_size / median)
    info["fp32_interleaved_s"] = fp32_seconds
    info["speedup_vs_fp32"] = statistics.median(fp32_seconds) / median
    benchmark.extra_info.update(info)
