"""What each phase runs: builders turning a :class:`~hpml.bench.matrix.Case` into a
:class:`~hpml.bench.sides.Measured` call, built before measurement from hpml's own pieces as ``hpml train``
builds them.  Step rows use the synthetic twin; data rows the real formats or a pre-materialized twin."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

import torch

from hpml.bench.sides import Measured, median_breakdown, NotApplicable
from hpml.bench.matrix import Case, registered_optimization
from hpml.data import DatasetInfo, HpmlDataset, create_dataset, dataset_info
from hpml.data.synthetic import materialize
from hpml.errors import HpmlError
from hpml.measure import flops_per_sample, synchronize
from hpml.measure.io import drop_page_cache
from hpml.models import create_model
from hpml.torch_compat import reset_compiled
from hpml.train.build import build_loader, model_kwargs, state_for
from hpml.train.optimizations import Settings
from hpml.train.run_config import RunConfig
from hpml.train.state import TrainState
from hpml.train.step import train_step

if TYPE_CHECKING:
    from hpml.bench.session import BenchSession

#: Samples in the batch FLOPs are counted on (2: the smallest BatchNorm accepts in training).
FLOPS_BATCH = 2


def run_config(case: Case, session: BenchSession) -> RunConfig:
    """The validated RunConfig ``hpml train`` would use for this row."""
    p = session.profile
    info = dataset_info(case.dataset)
    return RunConfig(
        model=case.model or info.model,
        dataset=case.dataset,
        device=case.device,
        batch_size=p.batch_size(info),
        optimizer=case.optimizer or "sgd",
        optimizations=(registered_optimization(case.optimization),),
        accum_steps=p.accum_steps,
        num_workers=p.num_workers,
        model_preset=p.model_preset(info),
        image_size=p.image_size(info),
        seq_len=p.sequence_length(info),
        seed=p.seed,
        synthetic=True,
        evaluate=False,
    )


def dataset(case: Case, session: BenchSession, size: int, *, split: str = "train", source: str | None = None) -> HpmlDataset:
    """``size`` samples of the case's dataset from ``source`` (default: the case's)."""
    p = session.profile
    info = dataset_info(case.dataset)
    source = source or case.source
    common = dict(size=size, seed=p.seed, image_size=p.image_size(info), seq_len=p.sequence_length(info))
    if source == "synthetic":
        return create_dataset(case.dataset, split, synthetic=True, **common)
    real = session.real_data
    try:
        return create_dataset(
            case.dataset, split, synthetic=False, data_dir=real.root(case.dataset),
            tokenizer=real.tokenizer(case.dataset), **common,
        )
    except HpmlError as err:  # no such data under --data-dir, or fewer samples than one call needs
        raise NotApplicable(f"real {case.dataset} data: {err}") from None


def stack(ds: HpmlDataset, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``start .. start+n`` as one host batch (decoded and augmented once, here)."""
    samples = [ds[i] for i in range(start, start + n)]
    return torch.stack([x for x, _ in samples]), torch.tensor([y for _, y in samples], dtype=torch.int64)


def build_state(case: Case, session: BenchSession, cfg: RunConfig, settings: Settings, ds: HpmlDataset) -> TrainState:
    """Model + optimizer state exactly as ``build_workload`` makes them, for ``settings``."""
    info = dataset_info(case.dataset)
    if settings.compile:
        reset_compiled()  # a fresh compile per row
    module = create_model(cfg.model, num_classes=info.num_classes, **model_kwargs(cfg, info, ds))
    return state_for(cfg, module, info, settings)


def count_flops(session: BenchSession, case: Case, cfg: RunConfig, state: TrainState, x: torch.Tensor, *, train: bool) -> int:
    """FLOPs per sample of the case's model (cached per model shape: optimizations don't change it)."""
    key = (cfg.model, case.dataset, cfg.image_size, cfg.seq_len, cfg.model_preset, train)
    if key not in session.flops_cache:
        example = state.move_input(x[:FLOPS_BATCH])
        session.flops_cache[key] = flops_per_sample(state.module, example, train=train)
    return session.flops_cache[key]


def input_extra(cfg: RunConfig, info: DatasetInfo, settings: Settings) -> dict[str, Any]:
    extra: dict[str, Any] = {"accum_steps": settings.accum_steps}
    if info.modality == "image":
        extra["image_size"] = cfg.image_size or info.image_size
    else:
        extra.update(seq_len=cfg.seq_len or info.seq_len, model_preset=cfg.model_preset)
    return extra


def _compute_dtype(settings: Settings) -> torch.dtype:
    return settings.autocast_dtype or torch.float32


def on_device(state: TrainState, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    # on the device before the timed calls: step rows time the step, load rows the copies
    return state.move_input(batch[0]), state.move_target(batch[1])


def train_step_workload(case: Case, session: BenchSession) -> Measured:
    """One ``train_step``: one optimizer update over ``accum_steps`` pre-built micro-batches."""
    cfg = run_config(case, session)
    info = dataset_info(case.dataset)
    settings = case.settings(session.profile)
    micro = settings.accum_steps
    ds = dataset(case, session, micro * cfg.batch_size)
    state = build_state(case, session, cfg, settings, ds)
    batches = [on_device(state, stack(ds, k * cfg.batch_size, cfg.batch_size)) for k in range(micro)]
    flops = count_flops(session, case, cfg, state, batches[0][0], train=True)
    return Measured(
        target=lambda: train_step(state, batches),
        samples_per_round=micro * cfg.batch_size,
        batch_size=cfg.batch_size,
        flops_per_sample=flops,
        compute_dtype=_compute_dtype(settings),
        extra=input_extra(cfg, info, settings),
        settings=settings,
    )


def handwritten_step_workload(case: Case, session: BenchSession) -> Measured:
    """The hand-written step doing :func:`train_step_workload`'s work: the ``overhead`` rows' reference."""
    cfg = run_config(case, session)
    info = dataset_info(case.dataset)
    settings = case.settings(session.profile)
    ds = dataset(case, session, cfg.batch_size)
    state = build_state(case, session, cfg, settings, ds)
    model, x_y = state.module, stack(ds, 0, cfg.batch_size)
    x, y = x_y[0].to(case.device), x_y[1].to(case.device)
    if settings.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    group = state.optimizer.param_groups[0]
    opt = torch.optim.SGD(model.parameters(), lr=group["lr"], momentum=group["momentum"],
                          nesterov=group["nesterov"], weight_decay=group["weight_decay"])
    loss_fn = state.criterion
    dtype = settings.autocast_dtype

    def step() -> None:
        with torch.autocast(case.device, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return Measured(target=step, samples_per_round=cfg.batch_size, batch_size=cfg.batch_size,
                    compute_dtype=_compute_dtype(settings), extra=input_extra(cfg, info, settings), settings=settings)


def inference_workload(case: Case, session: BenchSession) -> Measured:
    """One eval-mode forward of a pre-built test batch, already on the device."""
    cfg = run_config(case, session)
    info = dataset_info(case.dataset)
    settings = case.settings(session.profile)
    ds = dataset(case, session, cfg.batch_size, split="test")
    state = build_state(case, session, cfg, settings, ds)
    state.model.eval()
    x, _ = on_device(state, stack(ds, 0, cfg.batch_size))
    flops = count_flops(session, case, cfg, state, x, train=False)

    @torch.inference_mode()
    def forward() -> torch.Tensor:
        with state.autocast():
            return state.model(x)

    return Measured(
        target=forward,
        samples_per_round=cfg.batch_size,
        batch_size=cfg.batch_size,
        flops_per_sample=flops,
        compute_dtype=_compute_dtype(settings),
        extra=input_extra(cfg, info, settings),
        settings=settings,
    )


def _loader(case: Case, session: BenchSession, cfg: RunConfig, settings: Settings, ds: HpmlDataset):
    """The loader ``hpml train`` builds for these settings (a device-resident copy is made here, untimed)."""
    start = time.perf_counter()
    try:
        loader = build_loader(ds, cfg, settings, train=True)
    except HpmlError as err:
        if settings.device_loader:  # e.g. ImageNet JPEGs: no in-memory arrays() to copy over
            raise NotApplicable(f"device_loader needs the split in memory: {err}") from None
        raise
    return loader, time.perf_counter() - start


def loading_workload(case: Case, session: BenchSession) -> Measured:
    """One pass over ``load_batches`` batches copied to the device; worker start-up is in it unless they persist."""
    p = session.profile
    cfg = run_config(case, session)
    info = dataset_info(case.dataset)
    settings = case.settings(p)
    # A twin's samples are generated here, not in the timed pass: the row times the loader.
    ds = materialize(dataset(case, session, p.load_batches * cfg.batch_size))
    loader, setup_s = _loader(case, session, cfg, settings, ds)
    device = torch.device(case.device)
    setup = None
    if case.cold_cache:
        files = [os.fsdecode(p) for p in getattr(ds, "paths", ())]
        if not files:
            raise NotApplicable(f"{case.dataset} is read into memory when built: a pass reads no files, "
                                "so a cold page cache changes nothing")

        def setup() -> None:  # untimed, before every call; pytest-benchmark wants None back
            drop_page_cache(files)

    def one_pass() -> int:
        n = 0
        for x, y in loader:
            x = x.to(device, non_blocking=settings.pin_memory)
            y = y.to(device, non_blocking=settings.pin_memory)
            n += y.shape[0]
        return n

    extra = {
        "num_workers": settings.num_workers,
        "persistent_workers": settings.persistent_workers,
        "prefetch_factor": settings.prefetch_factor,
        "pin_memory": settings.pin_memory,
        "device_loader": settings.device_loader,
        "loader_setup_s": setup_s,  # s, one-off (device_loader: the copy of the split)
        "batches_per_round": len(loader),
        "twin_materialized": case.source == "synthetic",
        "cold_cache": case.cold_cache,
        **{k: v for k, v in input_extra(cfg, info, settings).items() if k != "accum_steps"},
    }
    return Measured(target=one_pass, samples_per_round=len(ds), batch_size=cfg.batch_size, extra=extra, setup=setup,
                    settings=settings)


def preprocess_workload(case: Case, session: BenchSession) -> Measured:
    """``ds[i]`` for ``preprocess_samples`` samples in this process (decode, augment, tokenize)."""
    p = session.profile
    info = dataset_info(case.dataset)
    n = p.preprocess_samples
    ds = materialize(dataset(case, session, n))  # a twin's generation is not pre-processing

    def decode_all() -> None:
        for i in range(n):
            ds[i]

    extra = {"image_size": p.image_size(info)} if info.modality == "image" else {"seq_len": p.sequence_length(info)}
    extra["twin_materialized"] = case.source == "synthetic"
    return Measured(target=decode_all, samples_per_round=n, batch_size=1, extra=extra)


def end_to_end_workload(case: Case, session: BenchSession) -> Measured:
    """``e2e_batches`` batches from the loader, each trained on; ``phases`` splits a call into host time
    waiting for batches (``load``: on CUDA the stall, not the loader's work) and ``train``."""
    p = session.profile
    cfg = run_config(case, session)
    info = dataset_info(case.dataset)
    settings = case.settings(p)
    micro = settings.accum_steps
    ds = dataset(case, session, p.e2e_batches * micro * cfg.batch_size)
    state = build_state(case, session, cfg, settings, ds)
    loader, setup_s = _loader(case, session, cfg, settings, ds)
    x0, _ = stack(ds, 0, FLOPS_BATCH)
    flops = count_flops(session, case, cfg, state, x0, train=True)
    calls: list[dict[str, float]] = []

    def epoch_slice() -> None:
        load_s = train_s = 0.0
        group: list[tuple[torch.Tensor, torch.Tensor]] = []
        t0 = time.perf_counter()
        for batch in loader:  # iter() inside the clock: worker start-up is loading time
            t1 = time.perf_counter()
            load_s += t1 - t0
            group.append(batch)
            if len(group) == micro:
                train_step(state, group)
                group = []
            t0 = time.perf_counter()
            train_s += t0 - t1
        t1 = time.perf_counter()
        load_s += t1 - t0  # the loader's end-of-epoch bookkeeping
        if group:
            train_step(state, group)
        synchronize(case.device)  # host-device sync: the slice's kernels are done
        train_s += time.perf_counter() - t1
        calls.append({"load": load_s, "train": train_s})

    extra = {
        "num_workers": settings.num_workers,
        "pin_memory": settings.pin_memory,
        "device_loader": settings.device_loader,
        "loader_setup_s": setup_s,
        "batches_per_round": len(loader),
        **input_extra(cfg, info, settings),
    }
    return Measured(
        target=epoch_slice,
        samples_per_round=len(ds),
        batch_size=cfg.batch_size,
        flops_per_sample=flops,
        compute_dtype=_compute_dtype(settings),
        extra=extra,
        phases=lambda measured: median_breakdown(calls, measured),
        settings=settings,
    )

