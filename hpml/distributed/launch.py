"""Training on several ranks: what each rank of ``hpml train`` runs, and the checks made
before any starts.  Who starts the ranks does not change the workload:

* **torchrun** (or ``srun`` running torchrun on every node): each process already is a
  rank and finds its place in the environment -> :func:`run_from_env`;
* **hpml train --nproc K**: this process spawns K local ranks
  (:func:`hpml.distributed.ranks.spawn`: processes, rendezvous, signals, exit codes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpml.distributed.env import (
    DistEnv,
    check_cpu_ranks,
    check_nproc,
    env_from_environ,
    in_distributed_environment,
    process_group,
    rank_device,
)
from hpml.distributed.ranks import describe, rank_error, spawn
from hpml.errors import HpmlError


def scale_lr(cfg, world_size: int):
    """With the default SGD learning rate, follow the linear scaling rule over the
    *global* batch (batch x accumulation x world size), as the single-process default
    does over its batch; an explicit --lr is kept as given."""
    if cfg.lr is not None or cfg.optimizer != "sgd" or world_size == 1:
        return cfg
    return cfg.replace(lr=cfg.effective_lr * world_size)


def check_run_options(cfg, *, checkpoint_dir=None, resume: bool = False) -> None:
    """Refuse, before any process starts, what a distributed run cannot do."""
    from hpml.train.build import settings_for

    from hpml.train.checkpoint import CHECKPOINT_NAME
    from hpml.distributed.wrap import fsdp_unsupported_reason

    settings = settings_for(cfg)
    if resume and checkpoint_dir and not (Path(checkpoint_dir) / CHECKPOINT_NAME).is_file():
        raise HpmlError(f"no checkpoint to resume from at {Path(checkpoint_dir) / CHECKPOINT_NAME}")
    if settings.strategy == "fsdp" and (checkpoint_dir or resume):
        raise HpmlError("--opt fsdp cannot write or resume checkpoints yet (its state is sharded "
                        "across ranks); drop --checkpoint-dir/--resume or use DDP (no --opt fsdp)")
    if settings.device_loader:
        raise HpmlError("--opt device_loader keeps the whole dataset on every rank and does not "
                        "shard it; leave it out of distributed runs")
    reason = fsdp_unsupported_reason(settings)
    if reason:
        raise HpmlError(reason)


def train_rank(env: DistEnv, cfg, options: dict[str, Any]) -> dict[str, Any] | None:
    """One rank of ``hpml train``: build, wrap, run with reduced metrics.  Rank 0 returns
    the record (and alone writes the JSON, log and checkpoints); the others return None."""
    from hpml.distributed.data import shard_evaluation
    from hpml.distributed.metrics import reduce_metrics
    from hpml.distributed.wrap import make_wrapper
    from hpml.train.build import build_training, settings_for
    from hpml.train.run import run

    cfg = scale_lr(cfg, env.world_size)
    wrap = make_wrapper(settings_for(cfg).strategy)
    work = build_training(cfg, rank=env.rank, world_size=env.world_size, wrap_model=wrap)
    shard_evaluation(work)
    record = run(cfg, work=work, reduce=reduce_metrics, **options)
    return record if env.is_main else None


def run_from_env(cfg, *, timeout: float | None = None, **options: Any) -> dict[str, Any] | None:
    """This process is one rank started by torchrun: join, train, leave.  Errors are
    re-raised as one line naming this rank (torchrun stops the other ranks)."""
    env = env_from_environ()
    check_run_options(cfg, checkpoint_dir=options.get("checkpoint_dir"), resume=options.get("resume", False))
    device = rank_device(cfg.device, env.local_rank)
    try:
        with process_group(env, device, init_method="env://", timeout=timeout):
            return train_rank(env, cfg, options)
    except BaseException as exc:
        kind, message = describe(exc)
        if kind == "error":
            raise  # a bug: the traceback is the useful report, as in a single-process run
        raise rank_error(env.rank, kind, message, exc_type=type(exc).__name__) from exc


def launch_run(
    cfg,
    *,
    nproc: int = 1,
    json_path: str | Path | None = None,
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    timeout: float | None = None,
) -> dict[str, Any] | None:
    """``hpml train`` on several ranks: under torchrun (``$WORLD_SIZE`` set) this process
    is one rank; otherwise spawn ``nproc`` local ranks.  Returns the run record on rank 0
    (and in a spawning launcher), None on the other ranks."""
    options = dict(json_path=json_path, log_path=log_path, checkpoint_dir=checkpoint_dir,
                   resume=resume, progress=progress)
    if in_distributed_environment():
        if nproc > 1:
            raise HpmlError("--nproc cannot be combined with torchrun ($WORLD_SIZE is set); "
                            "use torchrun's --nproc-per-node instead")
        return run_from_env(cfg, timeout=timeout, **options)
    check_nproc(nproc, cfg.device)
    check_cpu_ranks(nproc, cfg.device)
    check_run_options(cfg, checkpoint_dir=checkpoint_dir, resume=resume)
    results = spawn(train_rank, nproc, (cfg, options), device=cfg.device, timeout=timeout)
    return results[0]
