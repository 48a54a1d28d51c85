"""FLOPs per sample of a model, by ``FlopCounterMode`` (what it counts: docs/measurement.md)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from hpml.errors import HpmlError

ExampleInput = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


def _first_tensor(output: Any) -> torch.Tensor:
    """The tensor to back-propagate from: a tensor, a tuple's first, or an HF ``ModelOutput``'s ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise HpmlError(f"cannot count backward FLOPs: the model returned {type(output).__name__}, not a tensor")


def flops_per_sample(model: nn.Module, example_input: ExampleInput, *, train: bool = True) -> int:
    """FLOPs of one forward (+ backward when ``train``) pass per sample of ``example_input``; the model is restored."""
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not isinstance(inputs[0], torch.Tensor) or inputs[0].dim() == 0:
        raise HpmlError("example_input must be a batched tensor (or tuple of tensors), batch first")
    batch = inputs[0].shape[0]
    if batch == 0:
        raise HpmlError("example_input has batch size 0; use a batch of 1 or 2")

    was_training = model.training
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    saved_buffers = [b.detach().clone() for b in model.buffers()]
    cuda_indices = sorted(
        {
            d.index if d.index is not None else torch.cuda.current_device()
            for d in {t.device for t in inputs} | {p.device for p in params}
            if d.type == "cuda"
        }
    )
    try:
        with torch.random.fork_rng(devices=cuda_indices):  # dropout must not advance the run's RNG
            for p in params:
                p.grad = None
            model.train(train)
            counter = FlopCounterMode(display=False)
            with counter, torch.set_grad_enabled(train):
                output = model(*inputs)
                if train:
                    # sum() adds no counted FLOPs; it only gives backward a scalar.
                    _first_tensor(output).float().sum().backward()
    finally:
        model.train(was_training)
        for p, grad in zip(params, saved_grads):
            p.grad = grad
        with torch.no_grad():
            for buf, saved in zip(model.buffers(), saved_buffers):
                buf.copy_(saved)
    return round(counter.get_total_flops() / batch)
