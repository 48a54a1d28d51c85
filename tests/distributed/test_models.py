"""Models under DDP on 2 CPU ranks: every parameter that trains gets its gradient, so DDP's
reducer (built without ``find_unused_parameters``) never waits for one that never comes.

One spawn trains every model (two fresh interpreters importing torch are the expensive
part); each model's outcome is one test.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from hpml.distributed import spawn
from hpml.train.run_config import RunConfig

pytestmark = pytest.mark.ddp

STEPS = 3
XLNET = ("xlnet", "amazon_polarity", "tiny")
#: A representative set: hpml's registry, and hf:/timm:/torchvision: names of each
#: modality (hf:xlnet carries XLNet's pre-training-only parameters too).
SMOKE = [
    XLNET,
    ("resnet18", "digits", None),
    ("hf:xlnet", "amazon_polarity", "tiny"),
    ("hf:bert", "amazon_polarity", "tiny"),
    ("hf:distilbert", "amazon_polarity", "tiny"),
    ("hf:gpt2", "amazon_polarity", "tiny"),
    ("hf:vit", "digits", None),
    ("torchvision:resnet18", "digits", None),
    ("torchvision:mobilenet_v3_small", "digits", None),
    ("timm:resnet18", "digits", None),
]


def available(model: str) -> bool:
    return not model.startswith("timm:") or importlib.util.find_spec("timm") is not None


def config(model: str, dataset: str, preset: str | None) -> RunConfig:
    return RunConfig(model=model, dataset=dataset, device="cpu", batch_size=4, steps=STEPS, synthetic=True,
                     model_preset=preset, train_size=32, test_size=8, image_size=16 if preset is None else None,
                     seq_len=16 if preset else None, evaluate=False)


def _train(env, cases: list) -> dict:
    """Runs on each rank: ``STEPS`` DDP steps of each model on this rank's shard; its
    weights before and after, or the one-line error."""
    from hpml.distributed.wrap import ddp_wrap
    from hpml.train.build import build_training
    from hpml.train.step import train_step

    out: dict = {}
    for case in cases:
        try:
            work = build_training(config(*case), rank=env.rank, world_size=env.world_size, wrap_model=ddp_wrap)
            before = [p.detach().clone() for p in work.state.module.parameters()]
            batches = iter(work.train_loader)
            for _ in range(STEPS):
                train_step(work.state, [next(batches)])
            out[case] = (before, [p.detach().clone() for p in work.state.module.parameters()])
        except Exception as exc:  # reported by the case's test, the other models still run
            out[case] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return out


@pytest.fixture(scope="module")
def xlnet_ranks() -> list[dict]:
    return spawn(_train, 2, ([XLNET],), device="cpu", timeout=60, threads=1)


def test_xlnet_tiny_trains_3_steps_on_two_ranks_and_they_hold_the_same_weights(xlnet_ranks):
    r0, r1 = (ranks[XLNET] for ranks in xlnet_ranks)
    assert not isinstance(r0, str), r0
    (before, after0), (_, after1) = r0, r1
    assert any(not torch.equal(a, b) for a, b in zip(before, after0))  # it trained
    # The ranks saw different shards: only the all-reduce makes their weights equal.
    assert all(torch.equal(a, b) for a, b in zip(after0, after1))


@pytest.fixture(scope="module")
def smoke_ranks() -> list[dict]:
    cases = [case for case in SMOKE if available(case[0])]
    return spawn(_train, 2, (cases,), device="cpu", timeout=120, threads=1)


@pytest.mark.slow  # ~10 models built and trained in each of two ranks
@pytest.mark.parametrize("case", SMOKE, ids=[c[0] for c in SMOKE])
def test_model_trains_under_ddp_and_ranks_agree(smoke_ranks, case):
    if not available(case[0]):
        pytest.skip(f"{case[0]} needs timm, which is not installed")
    results = [ranks[case] for ranks in smoke_ranks]
    assert not isinstance(results[0], str), results[0]
    (before, after0), (_, after1) = results
    assert any(not torch.equal(a, b) for a, b in zip(before, after0))
    assert all(torch.equal(a, b) for a, b in zip(after0, after1))
