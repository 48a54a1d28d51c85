"""How the data is split across ranks.

Training: ``build_training`` gives each rank a ``DistributedSampler`` shard (shuffled
per epoch by ``set_epoch``; padded so every rank takes the same number of steps, which
DDP's all-reduces need).  Evaluation: :class:`ShardSampler` below, an exact partition,
so the sample-weighted mean of the ranks' accuracies is the accuracy over the whole
test set -- not every rank evaluating all of it.
"""

from __future__ import annotations

import math
from typing import Iterator

from torch.utils.data import Sampler


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of ``range(n)``, in order.

    Without ``pad`` the shards partition the data exactly (they may differ in length by
    one).  With ``pad`` every shard has ``ceil(n / world_size)`` indices, the short ones
    repeating their first index: needed where every forward is a collective (FSDP
    all-gathers parameters per forward) or a shard would otherwise be empty.

    >>> [list(ShardSampler(5, r, 2)) for r in range(2)]
    [[0, 2, 4], [1, 3]]
    >>> list(ShardSampler(5, 1, 2, pad=True))
    [1, 3, 1]
    """

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
    """Give ``work`` (a :class:`~hpml.train.build.TrainingSetup`) a test loader over this
    rank's shard of the test set."""
    from hpml.train.build import build_loader

    if work.world_size == 1:
        return
    n = len(work.test_set)
    # Under DDP only the first forward of an evaluation is a collective (buffer sync), so
    # unequal shards are fine as long as none is empty; FSDP's every forward is one.
    pad = work.settings.strategy == "fsdp" or n < work.world_size
    sampler = ShardSampler(n, work.rank, work.world_size, pad=pad)
    work.test_loader = build_loader(work.test_set, work.cfg, work.settings, train=False, sampler=sampler)
