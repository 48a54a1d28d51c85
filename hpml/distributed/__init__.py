"""Distributed data-parallel training (DDP, minimal FSDP) over gloo or nccl: the rank's environment, the
model wrappers, metric reduction, evaluation shards and the launcher (:func:`launch_run`)."""

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
