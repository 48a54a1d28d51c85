"""The training step and evaluation: the hot path, with no feature branches."""

from __future__ import annotations

import contextlib
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from hpml.train.state import TrainState

Batch = tuple[torch.Tensor, torch.Tensor]


def train_step(state: TrainState, micro_batches: Sequence[Batch]) -> torch.Tensor:
    """One optimizer update over ``micro_batches``, each loss weighted by its share of the samples so the gradient
    equals one batch's. Returns the loss as a device tensor: ``.item()`` would force a sync."""
    total = sum(y.shape[0] for _, y in micro_batches)
    last = len(micro_batches) - 1
    loss_sum = torch.zeros((), device=state.device)
    for i, (x, y) in enumerate(micro_batches):
        x, y = state.move_input(x), state.move_target(y)
        # Under DDP, gradients are all-reduced only on the last micro-step.
        with state.no_sync() if i < last else contextlib.nullcontext():
            with state.autocast():
                loss = state.criterion(state.model(x), y) * (y.shape[0] / total)
            state.scaler.scale(loss).backward()  # outside autocast, as torch recommends
        loss_sum += loss.detach()
    state.scaler.step(state.optimizer)  # skips the update on fp16 overflow (scaler enabled)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.step += 1
    return loss_sum


@torch.inference_mode()
def evaluate(state: TrainState, batches: Iterable[Batch], *, topk: int = 5) -> dict[str, float]:
    """Top-1 (and top-``topk``) accuracy and mean cross-entropy over ``batches``; one device sync, at the end."""
    model = state.model
    was_training = model.training
    model.eval()
    correct1 = torch.zeros((), device=state.device, dtype=torch.long)
    correctk = torch.zeros((), device=state.device, dtype=torch.long)
    loss_sum = torch.zeros((), device=state.device)
    n = 0
    k = 1
    for x, y in batches:
        x, y = state.move_input(x), state.move_target(y)
        with state.autocast():
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        k = min(topk, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top == y[:, None]
        correct1 += hits[:, 0].sum()
        correctk += hits.any(dim=1).sum()
        n += y.shape[0]
    model.train(was_training)
    if n == 0:
        return {"accuracy": float("nan"), "loss": float("nan"), "samples": 0}
    result = {
        "accuracy": correct1.item() / n,  # .item(): the one device sync of the evaluation
        "loss": loss_sum.item() / n,
        "samples": n,
    }
    if k > 1 and k == topk:
        result[f"top{topk}"] = correctk.item() / n
    return result
