"""DDP benchmark rows (``benchmarks/test_ddp.py``): one optimizer step on every rank of a
:class:`~hpml.distributed.pool.RankPool`, timed to the slowest rank; world size 1 ``baseline`` is the
scaling reference.  ``extra_info`` adds each rank's trackers (``rank_<metric>``) and ``scaling_efficiency``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from hpml.bench.sides import Measured, NotApplicable
from hpml.bench.matrix import BASELINE, Case
from hpml.bench.profiles import Profile
from hpml.data import dataset_info
from hpml.distributed.env import DistEnv, backend_for
from hpml.torch_compat import grad_bucket_count, uncompiled
from hpml.train.optimizations import OPTIMIZATIONS

if TYPE_CHECKING:
    from hpml.bench.session import BenchSession
    from hpml.train.run_config import RunConfig
    from hpml.distributed.pool import RankPool

PHASE = "ddp"
WORLD_SIZES = (1, 2)
#: The datasets of the DDP rows, each with its registered model (synthetic twins).
DATASETS = ("cifar10", "amazon_polarity")
DEVICES = ("cpu", "cuda")
#: Threads per CPU rank, equal at every world size: scaling shows DDP's cost, not parallelism.
CPU_THREADS = 1


@dataclass(frozen=True)
class DdpCase(Case):
    """A benchmark row with a world size."""

    world_size: int = 1

    @property
    def id(self) -> str:
        return f"{self.label}-{self.device}-w{self.world_size}-{self.optimization}-{self.optimizer}"

    @property
    def baseline_key(self) -> tuple:
        return (*super().baseline_key, self.world_size)


def ddp_optimizations() -> list[str]:
    """``baseline``, ``grad_accum`` and every distributed-only optimization, in registry order."""
    return [n for n in OPTIMIZATIONS
            if n in (BASELINE, "grad_accum") or OPTIMIZATIONS.get(n).distributed_only]


def ddp_cases(profile: Profile, datasets=DATASETS) -> list[DdpCase]:
    cases = []
    for device in DEVICES:
        for dataset in datasets:
            for world in WORLD_SIZES:
                names = [BASELINE] if world == 1 else ddp_optimizations()
                cases += [DdpCase(PHASE, dataset, device, name, "sgd", world_size=world) for name in names]
    return cases


def unavailable(case: DdpCase) -> str | None:
    """Why the row cannot run on this machine (None when it can)."""
    if case.device == "cuda" and torch.cuda.device_count() < case.world_size:
        return (f"world size {case.world_size} needs {case.world_size} CUDA devices (one per rank), "
                f"{torch.cuda.device_count()} available")
    if case.optimization == "sync_bn" and dataset_info(case.dataset).modality != "image":
        return f"sync_bn converts BatchNorm layers, and {case.model} (a text model) has none"
    return None


def _setup(env: DistEnv, store: dict, cfg: "RunConfig") -> dict[str, Any]:
    """Build this rank's state and its pre-built micro-batches."""
    from hpml.bench.workloads import FLOPS_BATCH, on_device, stack
    from hpml.data import create_dataset, dataset_info
    from hpml.distributed.wrap import make_wrapper
    from hpml.measure import flops_per_sample
    from hpml.models import create_model
    from hpml.train.build import model_kwargs, seed_everything, settings_for, state_for

    store.clear()
    seed_everything(cfg.seed)
    info = dataset_info(cfg.dataset)
    settings = settings_for(cfg)
    micro, batch = settings.accum_steps, cfg.batch_size
    ds = create_dataset(cfg.dataset, "train", synthetic=True, size=env.world_size * micro * batch,
                        seed=cfg.seed, image_size=cfg.image_size, seq_len=cfg.seq_len)
    module = create_model(cfg.model, num_classes=info.num_classes, **model_kwargs(cfg, info, ds))
    state = state_for(cfg, module, info, settings)
    flops = flops_per_sample(state.module, state.move_input(stack(ds, 0, FLOPS_BATCH)[0]), train=True)
    if env.world_size > 1:  # world size 1: the plain single-process step, the scaling reference
        state.model, state.no_sync = make_wrapper(settings.strategy)(state)
    # This rank's shard: micro-batches k of rank r are samples (r * micro + k) * batch ...
    batches = [on_device(state, stack(ds, (env.rank * micro + k) * batch, batch)) for k in range(micro)]
    store.update(state=state, batches=batches)
    return {"flops_per_sample": flops, "threads": torch.get_num_threads()}


def _buckets(env: DistEnv, store: dict) -> int | None:
    """DDP's gradient buckets now (one in the first step, ``bucket_cap_mb`` ones from the second)."""
    model = store["state"].model
    reducer = getattr(uncompiled(model), "reducer", None)  # None: no DDP (1 rank, FSDP)
    if reducer is None:
        return None
    # DDP's logging data keeps the first step's sizes; the reducer has the rebuilt buckets
    return grad_bucket_count(reducer)


def bucket_count(pool: "RankPool") -> int | None:
    """Rank 0's DDP bucket count; call after the row's steps."""
    return pool.call(_buckets)[0]


def _step(env: DistEnv, store: dict) -> None:
    from hpml.measure import synchronize
    from hpml.train.step import train_step

    state = store["state"]
    train_step(state, store["batches"])
    synchronize(state.device)  # host-device sync: the rank's step is done when it replies


def _track_start(env: DistEnv, store: dict) -> None:
    """Start this rank's registered trackers (its own RSS, device peak, page faults, ...)."""
    from hpml.measure.tracker_registry import Trackers

    store["tracker"] = Trackers(store["state"].device)
    store["tracker"].start()


def _track_stop(env: DistEnv, store: dict) -> dict[str, Any]:
    return store.pop("tracker").stop()


def rank_memory(pool: "RankPool", calls: int, samples_per_rank: int = 1) -> dict[str, Any]:
    """The ranks' trackers over the row's calls as ``rank_<metric>``, combined by each metric's rule."""
    from hpml.distributed.metrics import combine
    from hpml.results.metric_registry import per_unit

    calls = max(calls, 1)
    per_rank = [per_unit(totals, calls=calls, samples=calls * samples_per_rank) for totals in pool.call(_track_stop)]
    return {f"rank_{name}": value for name, value in combine(per_rank).items()}


def ddp_workload(case: DdpCase, session: "BenchSession", pool: "RankPool") -> Measured:
    """Build ``case`` on every rank of ``pool``; the measured call is one step on all."""
    from hpml.bench.workloads import run_config

    reason = unavailable(case)
    if reason:
        raise NotApplicable(reason)
    cfg = run_config(case, session)
    settings = case.settings(session.profile)
    info = pool.call(_setup, cfg)[0]
    extra = {
        "world_size": case.world_size,
        "backend": backend_for(case.device),
        "strategy": settings.strategy if case.world_size > 1 else "single_process",
        "accum_steps": settings.accum_steps,
        "ddp_bucket_cap_mb": settings.ddp_bucket_cap_mb,
        "ddp_gradient_as_bucket_view": settings.ddp_gradient_as_bucket_view,
        "ddp_static_graph": settings.ddp_static_graph,
        "sync_bn": settings.sync_bn,
        "threads": info["threads"],
        "image_size": cfg.image_size,
        "seq_len": cfg.seq_len,
        "model_preset": cfg.model_preset,
    }
    pool.call(_track_start)  # after the build: the rounds (warm-up included) are tracked
    samples = case.world_size * settings.accum_steps * cfg.batch_size
    return Measured(
        target=lambda: pool.call(_step),
        after=lambda calls: rank_memory(pool, calls, samples // case.world_size),
        samples_per_round=samples,
        batch_size=cfg.batch_size,
        flops_per_sample=info["flops_per_sample"],
        compute_dtype=None,  # no single-device peak to compare a multi-rank rate with
        extra=extra,
    )


def scaling_efficiency(session: "BenchSession", case: DdpCase, samples_per_s: float | None) -> float | None:
    """``samples_per_s`` over world size x the world-size-1 baseline's (None without it)."""
    single = dataclasses.replace(case, world_size=1, optimization=BASELINE)
    speedup = session.book.speedup(single, samples_per_s)
    return speedup / case.world_size if speedup is not None else None
