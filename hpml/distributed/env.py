"""Who this process is in a distributed run, read from torchrun's variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_*``, ``MASTER_*``; ``--nproc`` sets the same), and joining and leaving its process group."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator, Mapping

import torch
import torch.distributed as dist

from hpml.environment import VARS
from hpml.errors import HpmlError

#: s a collective waits for another rank before failing; room for rank 0's checkpoint ($HPML_DIST_TIMEOUT).
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run: global rank, and rank among this host's processes."""

    rank: int
    world_size: int
    local_rank: int = 0
    local_world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise HpmlError(f"rank must be in [0, world size {self.world_size}), got {self.rank}")
        if not 0 <= self.local_rank < self.local_world_size:
            raise HpmlError(
                f"local rank must be in [0, local world size {self.local_world_size}), got {self.local_rank}"
            )

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and results."""
        return self.rank == 0

    @property
    def nodes(self) -> int:
        """Hosts in the run, assuming the same number of processes on each (as torchrun does)."""
        return max(1, self.world_size // self.local_world_size)

    def as_environ(self) -> dict[str, str]:
        return {
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
        }


def in_distributed_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """True when a launcher (torchrun, or srun exporting its variables) started this process."""
    return "WORLD_SIZE" in environ


def env_from_environ(environ: Mapping[str, str] = os.environ) -> DistEnv:
    """Read torchrun's variables; a missing or malformed one is an HpmlError naming it."""

    def number(name: str, default: str | None = None) -> int:
        value = environ.get(name, default)
        if value is None:
            raise HpmlError(f"${name} is not set; start distributed runs with torchrun (see README)")
        try:
            return int(value)
        except ValueError:
            raise HpmlError(f"${name} must be an integer, got {value!r}") from None

    world_size = number("WORLD_SIZE")
    if world_size < 1:
        raise HpmlError(f"$WORLD_SIZE must be >= 1, got {world_size}")
    rank = number("RANK")
    # Without the LOCAL_* pair (a hand-written launcher), assume one host holds every rank.
    local_rank = number("LOCAL_RANK", str(rank))
    local_world_size = number("LOCAL_WORLD_SIZE", str(world_size))
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if world_size > 1 and not environ.get(name):
            raise HpmlError(f"${name} is not set; torchrun sets it (or export it next to $WORLD_SIZE)")
    return DistEnv(rank, world_size, local_rank, local_world_size)


def timeout_from(seconds: float | None = None) -> timedelta:
    """``seconds``, else $HPML_DIST_TIMEOUT, else :data:`DEFAULT_TIMEOUT_S`."""
    if seconds is None:
        seconds = VARS["HPML_DIST_TIMEOUT"].get(default=DEFAULT_TIMEOUT_S)
    if not 0 < seconds < math.inf:
        raise HpmlError(f"distributed timeout must be > 0 s, got {seconds}")
    return timedelta(seconds=seconds)


def backend_for(device: str | torch.device) -> str:
    """nccl between GPUs, gloo between CPU processes."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under SLURM or taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_cpu_ranks(nproc: int, device: str) -> None:
    """``--nproc K`` on CPU: at most one rank per core (``--nproc 100`` on 2 cores took 3 GB in 5 s)."""
    if torch.device(device).type == "cpu" and nproc > usable_cores():
        raise HpmlError(f"--nproc {nproc} exceeds the {usable_cores()} CPU cores this process may use; "
                        f"use --nproc {usable_cores()} or fewer")


def check_nproc(nproc: int, device: str) -> None:
    """One CUDA device per local rank: more ranks than devices is refused up front."""
    if nproc < 1:
        raise HpmlError(f"--nproc must be >= 1, got {nproc}")
    if torch.device(device).type == "cuda":
        available = torch.cuda.device_count()
        if nproc > available:
            raise HpmlError(
                f"--nproc {nproc} needs {nproc} CUDA devices (one per rank) but {available} "
                f"{'is' if available == 1 else 'are'} available; use --nproc {max(available, 1)} or --device cpu"
            )


def rank_device(device: str, local_rank: int) -> torch.device:
    """This rank's device: ``cuda`` -> ``cuda:LOCAL_RANK``, made current; ``cpu`` stays ``cpu``."""
    if torch.device(device).type != "cuda":
        return torch.device("cpu")
    available = torch.cuda.device_count()
    if local_rank >= available:
        raise HpmlError(
            f"local rank {local_rank} needs CUDA device {local_rank} (one per rank) but {available} "
            f"{'is' if available == 1 else 'are'} available; start at most {available} processes per node"
        )
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def process_group(
    env: DistEnv,
    device: str | torch.device,
    *,
    init_method: str = "env://",
    timeout: timedelta | float | None = None,
) -> Iterator[None]:
    """Join the run's process group for the block and always leave it, so no rank exits with its sockets open."""
    if not isinstance(timeout, timedelta):
        timeout = timeout_from(timeout)
    device = torch.device(device)
    kwargs = {}
    if device.type == "cuda":
        # Binds the communicator to this rank's GPU now rather than guessing it later.
        kwargs["device_id"] = torch.device("cuda", device.index if device.index is not None else env.local_rank)
    dist.init_process_group(
        backend_for(device), init_method=init_method, rank=env.rank, world_size=env.world_size,
        timeout=timeout, **kwargs,
    )
    try:
        yield
    finally:
        shutdown()


def shutdown() -> None:
    """Leave the process group if this process is in one (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
