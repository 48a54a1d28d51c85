"""Distributed data-parallel training: DDP (and minimal FSDP) over gloo or nccl.

* :mod:`~hpml.distributed.env` -- who this process is (torchrun's variables), its
  device, joining and leaving the process group;
* :mod:`~hpml.distributed.wrap` -- the ``wrap_model`` hook: DDP (+SyncBatchNorm,
  +compile) or FSDP;
* :mod:`~hpml.distributed.metrics` -- per-rank metrics combined into the run's;
* :mod:`~hpml.distributed.data` -- the evaluation shard;
* :mod:`~hpml.distributed.ranks` -- local ranks: spawn, rendezvous, signals, failures;
* :mod:`~hpml.distributed.launch` -- what a training rank runs, torchrun's entry.

``hpml train --nproc 2 ...`` and ``torchrun --nproc-per-node 2 -m hpml train ...`` both
end in :func:`launch_run`.
"""

from hpml.distributed.env import DistEnv, env_from_environ, in_distributed_environment, process_group
from hpml.distributed.launch import launch_run, run_from_env, train_rank
from hpml.distributed.ranks import RankFailed, spawn
from hpml.distributed.metrics import combine, reduce_metrics
from hpml.distributed.wrap import ddp_wrap, fsdp_wrap, make_wrapper

__all__ = [
    "DistEnv", "env_from_environ", "in_distributed_environment", "process_group",
    "RankFailed", "launch_run", "run_from_env", "spawn", "train_rank",
    "combine", "reduce_metrics",
    "ddp_wrap", "fsdp_wrap", "make_wrapper",
]
