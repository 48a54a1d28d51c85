"""A measured training run: the phases of ``hpml train``, and its JSON record.

Workload (build/fit), launcher (inline here; see :mod:`hpml.distributed`) and
measurement (:mod:`hpml.measure`) stay separate: this module only composes them.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpml.errors import HpmlError, is_out_of_memory, one_line_message
from hpml.machine import cpu_has_bf16, machine_info
from hpml.measure import PeakEstimate, flops_per_sample, measure_phase, peak_estimate, peak_flags
from hpml.models import count_parameters
from hpml.train.build import TrainingSetup, build_training
from hpml.files import atomic_write, os_error
from hpml.results.record import SCHEMA, TrainRecord, flops_fields
from hpml.train.fit import fit
from hpml.train.optimizations import check_single_process
from hpml.train.run_config import RunConfig
from hpml.train.step import evaluate

#: Batches drawn from the loader in the "load" phase (the first one pays worker start-up).
LOAD_BATCHES = 4


def measure_preprocess(work: TrainingSetup, n: int) -> dict[str, Any]:
    """Decode + augment ``n`` samples one by one, in this process."""
    n = min(n, len(work.train_set))
    with measure_phase("preprocess", work.state.device, samples=n) as m:
        for i in range(n):
            work.train_set[i]
    return m.stats.as_dict()


def measure_load(work: TrainingSetup, batches: int = LOAD_BATCHES) -> dict[str, Any]:
    """Iterate the training loader (and copy to the device), no compute."""
    state = work.state
    with measure_phase("load", state.device) as m:
        for x, y in itertools.islice(iter(work.train_loader), batches):
            state.move_input(x), state.move_target(y)
            m.samples += y.shape[0]
    return m.stats.as_dict()


def measure_inference(work: TrainingSetup) -> tuple[dict[str, Any], dict[str, float]]:
    with measure_phase("inference", work.state.device) as m:
        metrics = evaluate(work.state, work.test_loader)
        m.samples = metrics["samples"]
    return m.stats.as_dict(), metrics


def example_batch(work: TrainingSetup, size: int = 2) -> torch.Tensor:
    x = torch.stack([work.train_set[i][0] for i in range(min(size, len(work.train_set)))])
    return work.state.move_input(x)


def checked_flops(work: TrainingSetup) -> int:
    """FLOPs per sample, from a forward pass on two real samples: the first place a model
    meets the input size, so a size it cannot take (ViT's fixed 224 px, Inception at 8 px)
    is one line here rather than a traceback from the first training step."""
    try:
        return flops_per_sample(work.state.module, example_batch(work), train=True)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        cfg = work.cfg
        size = f"{cfg.image_size} px " if cfg.image_size else ""
        raise HpmlError(f"model {cfg.model!r} cannot take this run's {size}inputs: {one_line_message(exc)}"
                        + ("; try another --image-size" if cfg.image_size else "")) from None


@dataclass
class TrainMeasurement:
    """What a training run measured, before it is written down (:func:`build_record`)."""

    phases: dict[str, Any]  # per phase, combined over ranks
    fit: dict[str, Any]  # fit()'s result
    flops_per_sample: int
    accuracy: float | None
    estimate: PeakEstimate  # the peak FLOP/s of the run's compute dtype, at its thread count
    dtype: torch.dtype


def measure(cfg: RunConfig, work: TrainingSetup, *, log_path: str | Path | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
            reduce=lambda m: m) -> TrainMeasurement:
    """Measure each phase, train and evaluate; ``reduce`` combines the ranks' readings."""
    state = work.state
    phases: dict[str, Any] = {}
    phases["preprocess"] = measure_preprocess(work, n=4 * cfg.batch_size)
    phases["load"] = measure_load(work)
    flops = checked_flops(work)

    with measure_phase("train", state.device) as m:
        result = fit(work, log_path=log_path, checkpoint_dir=checkpoint_dir, resume=resume,
                     progress=progress, reduce=reduce, keep_going_on_write_error=True)
        m.samples = result["train_samples"]
    train = m.stats.as_dict()
    # fit's own clock covers the training steps only (not the per-epoch evaluation).  The
    # first steps (compile, autotuning, allocator growth) are reported apart, and the
    # throughput is that of the steady-state steps after them.
    steady_s = result["train_seconds"] - result["warmup_seconds"]
    steady_samples = result["train_samples"] - result["warmup_samples"]
    train.update(
        seconds=result["train_seconds"],  # s, every step (warm-up included)
        samples=result["train_samples"],
        samples_per_s=steady_samples / steady_s if steady_s > 0 and steady_samples else None,
        warmup_steps=result["warmup_steps"],
        warmup_seconds=result["warmup_seconds"],
        steady_seconds=steady_s,  # s: what samples_per_s is measured over
        steady_samples=steady_samples,
        # the phase's CPU, memory and I/O counters run around all of fit(), unlike its seconds
        counters_cover="all of fit(): every step, " + ("each epoch's evaluation, " if cfg.evaluate else "")
        + "logging and checkpoints",
    )
    phases["train"] = train
    accuracy = result["final"].get("accuracy")
    if cfg.evaluate:
        phases["inference"], metrics = measure_inference(work)
        accuracy = reduce(metrics)["accuracy"]
    # Distributed: each rank measured its shard; combine them (samples/s add up, seconds
    # and peak memory take the worst rank).  Identity in a single process.
    phases = {name: reduce(p) for name, p in phases.items()}
    dtype = state.settings.autocast_dtype or torch.float32
    estimate = peak_estimate(state.device.type, dtype)  # at this run's thread count
    return TrainMeasurement(phases, result, flops, accuracy, estimate, dtype)


def build_record(cfg: RunConfig, work: TrainingSetup, measured: TrainMeasurement) -> TrainRecord:
    """The JSON record of a measured run."""
    train, estimate = measured.phases["train"], measured.estimate
    # Distributed: the ranks' summed FLOP/s compare with the sum of their peaks (each rank
    # probes its own GPU, or on CPU its own share of the cores: the probe uses its threads).
    flops = flops_fields(measured.flops_per_sample, train["samples_per_s"], estimate.flops_per_s,
                         str(measured.dtype).removeprefix("torch."), devices=work.world_size)
    emulated = measured.dtype is torch.bfloat16 and work.state.device.type == "cpu" and not cpu_has_bf16()
    peak = {k: v for k, v in estimate.as_dict().items() if k != "peak_flops"}
    peak["peak_flags"] = peak_flags(flops["peak_fraction"], estimate, emulated=emulated)
    return TrainRecord(
        hpml_schema=SCHEMA,
        kind="train",
        config=cfg.as_dict(),
        params=count_parameters(work.state.module),
        flops_per_sample=measured.flops_per_sample,
        phases=measured.phases,
        train_samples_per_s=train["samples_per_s"],
        **flops,
        **peak,  # type: ignore[typeddict-item]
        steps=measured.fit["steps"],
        # its short last batch (hpml.train.build.build_loader)
        dropped_per_epoch=work.dropped_per_epoch * work.world_size,
        epochs=measured.fit["epochs"],
        accuracy=measured.accuracy,
        world_size=work.world_size,
        machine=machine_info(),
        # the CLI prints the summary, then these, and exits 1
        output_errors=list(measured.fit["output_errors"]),
    )


def run(
    cfg: RunConfig,
    *,
    json_path: str | Path | None = None,
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    work: TrainingSetup | None = None,
    reduce=lambda m: m,
) -> dict[str, Any]:
    """Build, measure, return (and optionally write) the record.

    Without ``work`` this is a single-process run (a distributed rank passes its own)."""
    if work is None:
        check_single_process(cfg.optimizations, cfg.device)
        work = build_training(cfg)
    measured = measure(cfg, work, log_path=log_path, checkpoint_dir=checkpoint_dir, resume=resume,
                       progress=progress, reduce=reduce)
    record: dict[str, Any] = dict(build_record(cfg, work, measured))
    if json_path and work.is_main:
        try:
            atomic_write(json_path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2, default=str)),
                             parents=True)
        except OSError as exc:
            record["output_errors"].append(f"could not write record {json_path}: {os_error(exc)}")
    return record


def summary_lines(record: dict[str, Any]) -> list[str]:
    """A short human summary of a run record."""
    cfg = record["config"]
    lines = [
        f"{cfg['model']} on {cfg['dataset']} ({cfg['device']}, batch {cfg['batch_size']}, "
        f"{cfg['optimizer']}, opts: {'+'.join(cfg['expanded_optimizations']) or 'baseline'})",
        f"  params {record['params']:,}  FLOPs/sample {record['flops_per_sample'] / 1e9:.2f} G",
    ]
    for name, p in record["phases"].items():
        rate = f"{p['samples_per_s']:9.1f}" if p["samples_per_s"] is not None else f"{'-':>9}"
        lines.append(
            f"  {name:<10} {p['seconds']:8.2f} s  {rate} samples/s  "
            f"peak RSS {p['peak_rss_bytes'] / 2**20:7.0f} MiB  device {p['peak_device_bytes'] / 2**20:6.0f} MiB"
        )
    train = record["phases"]["train"]
    lines.append(
        f"  warm-up    {train['warmup_seconds']:8.2f} s  the first {train['warmup_steps']} of "
        f"{record['steps']} steps (compile, autotuning, allocator growth), not in train samples/s"
    )
    frac = record["peak_fraction"]
    if record["train_samples_per_s"] is None:
        lines.append("  train: every step was warm-up, so there is no steady-state throughput (run more --steps)")
    else:
        lines.append(
            f"  train {record['train_samples_per_s']:.1f} samples/s, {record['achieved_flops'] / 1e9:.1f} GFLOP/s"
            + (f" ({frac:.1%} of measured {record['peak_dtype']} peak)" if frac is not None else "")
        )
    if record.get("dropped_per_epoch"):
        n = record["dropped_per_epoch"]
        lines.append(f"  dropped    the short last batch of each epoch ({n} sample{'s' * (n != 1)}): its shape would "
                     "recompile or re-tune mid-run, and 1 sample cannot train BatchNorm")
    for flag in record.get("peak_flags", []):
        lines.append(f"  warning: {flag}")
    if record.get("accuracy") is not None:
        lines.append(f"  test accuracy {record['accuracy']:.2%}")
    return lines
