"""torch's private API hpml uses (hpml.torch_compat): fails loudly when an upgrade moves it."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from hpml.torch_compat import grad_bucket_count, reset_compiled, static_graph_recorded, uncompiled


def test_a_compiled_model_holds_its_module():
    module = nn.Linear(2, 2)
    assert uncompiled(torch.compile(module)) is module and uncompiled(module) is module
    reset_compiled()


@pytest.fixture
def ddp(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rdzv'}", rank=0, world_size=1)
    yield DistributedDataParallel(nn.Linear(2, 2), static_graph=True)
    dist.destroy_process_group()


def test_ddp_keeps_its_static_graph_flag_and_its_buckets(ddp):
    assert hasattr(ddp, "_static_graph_delay_allreduce_enqueued"), "DDP's static-graph flag moved"
    assert not static_graph_recorded(ddp)
    ddp(torch.randn(3, 2)).sum().backward()
    assert static_graph_recorded(ddp)
    assert grad_bucket_count(ddp.reducer) == 1
