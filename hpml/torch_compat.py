"""The one place hpml uses torch's private API (tested in tests/test_torch_compat.py)."""

from __future__ import annotations

import torch
import torch.nn as nn


def reset_compiled() -> None:
    """Forget every compiled graph, so the next compile starts fresh."""
    torch._dynamo.reset()


def uncompiled(model: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper holds (``model`` itself when not compiled)."""
    return getattr(model, "_orig_mod", model)


def grad_bucket_count(reducer) -> int:
    """DDP's gradient buckets as rebuilt after the first step."""
    return len(reducer._get_zeros_like_grad_buckets())


def static_graph_recorded(ddp: nn.Module) -> bool:
    """Whether a static-graph DDP has recorded its graph in a first backward (True when torch has no such flag)."""
    return getattr(ddp, "_static_graph_delay_allreduce_enqueued", True)
