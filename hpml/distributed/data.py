"""How the data is split across ranks: training by ``DistributedSampler`` (equal steps, as DDP's all-reduces
need), evaluation by :class:`ShardSampler`, an exact partition whose weighted mean is the whole test set's."""

from __future__ import annotations

import math
from typing import Iterator

from torch.utils.data import Sampler


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of ``range(n)``. Without ``pad`` the shards partition the data;
    with it every shard has ``ceil(n / world_size)`` (short ones repeat their first), for FSDP's collective forwards."""

    def __init__(self, n: int, rank: int, world_size: int, *, pad: bool = False) -> None:
        self.indices = list(range(rank, n, world_size))
        if pad and n > 0:
            length = math.ceil(n / world_size)
            fill = self.indices[0] if self.indices else rank % n
            self.indices += [fill] * (length - len(self.indices))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard_evaluation(work) -> None:
    """Give ``work`` a test loader over this rank's shard of the test set."""
    from hpml.train.build import build_loader

    if work.world_size == 1:
        return
    n = len(work.test_set)
    # DDP's evaluation syncs buffers in its first forward only, so unequal shards are fine unless one
    # is empty; FSDP's every forward is a collective.
    pad = work.settings.strategy == "fsdp" or n < work.world_size
    sampler = ShardSampler(n, work.rank, work.world_size, pad=pad)
    work.test_loader = build_loader(work.test_set, work.cfg, work.settings, train=False, sampler=sampler)
