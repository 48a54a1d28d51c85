"""Full runs: epochs of steps with evaluation, logging, checkpoints and resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from tqdm import tqdm

from hpml.errors import HpmlError, RunFailed, is_out_of_memory
from hpml.measure.timers import synchronize
from hpml.train.build import TrainingSetup
from hpml.files import atomic_write, os_error
from hpml.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    save_checkpoint,
    sweep_stale_tmp,
)
from hpml.train.step import Batch, evaluate, train_step

#: Optimizer steps at the start of a run (or a resumed run) that count as warm-up, not
#: steady state: the first step pays torch.compile, cuDNN autotuning and allocator
#: growth, and the second still recompiles or re-tunes where the first changed state.
#: A run keeps at least one steady step when it has two or more (a 1-step run is all
#: warm-up and reports no steady-state throughput).
WARMUP_STEPS = 2


def micro_groups(batches: Iterable[Batch], accum_steps: int) -> Iterator[list[Batch]]:
    """Group consecutive batches into optimizer steps; a short last group is kept."""
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == accum_steps:
            yield group
            group = []
    if group:
        yield group


def set_epoch(loader: Any, epoch: int, seed: int) -> None:
    """Make epoch ``epoch``'s order and augmentation depend only on (seed, epoch), so a
    resumed run sees the same data as an uninterrupted one."""
    if hasattr(loader, "set_epoch"):  # DeviceLoader
        loader.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler
        sampler.set_epoch(epoch)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):  # DataLoader shuffling + worker seeds
        generator.manual_seed(seed + epoch)
    dataset = getattr(loader, "dataset", None)
    if getattr(loader, "num_workers", None) == 0 and hasattr(dataset, "seed_augmentation"):
        dataset.seed_augmentation(seed + epoch)  # augmentation in this process


def check_finite(losses: list[torch.Tensor], first_step: int, epoch: int, last_good: dict) -> None:
    """Raise RunFailed naming the first step whose loss is NaN/inf (one device sync)."""
    if not losses:
        return
    stacked = torch.stack(losses)
    if bool(torch.isfinite(stacked).all()):
        return
    bad = int((~torch.isfinite(stacked)).nonzero()[0, 0])
    raise RunFailed(
        f"loss became {stacked[bad].item()} at step {first_step + bad + 1} (epoch {epoch + 1}); "
        f"last good metrics: {json.dumps(last_good) if last_good else 'none yet'}"
    )


def oom_message(work: TrainingSetup) -> str:
    s = work.settings
    where = "device memory" if work.state.device.type == "cuda" else "host memory"
    return (
        f"out of {where} at batch size {work.cfg.batch_size} "
        f"(x{s.accum_steps} micro-batches per step) on {work.cfg.device}; "
        "try a smaller --batch-size with --opt grad_accum to keep the effective batch"
    )


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line by rewriting the file atomically (a log holds one line per
    epoch, so this is cheap): a full disk or a kill never leaves a truncated log."""
    old = path.read_bytes() if path.exists() else b""
    line = (json.dumps(record) + "\n").encode()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(old + line), parents=True)


class OutputWrites:
    """Writes of the run's outputs (log, checkpoints).  A failure is one line naming the
    path and the errno: raised as :class:`RunFailed`, or with ``keep_going`` kept (the
    first per path; later writes to that path are skipped) so that a finished run still
    reports its summary (``hpml train``)."""

    def __init__(self, keep_going: bool) -> None:
        self.keep_going = keep_going
        self.failures: dict[str, str] = {}

    def __call__(self, what: str, path: Path, write: Callable[[], None]) -> None:
        if str(path) in self.failures:
            return
        try:
            write()
        except OSError as exc:
            message = f"could not write {what} {path}: {os_error(exc)}"
            if not self.keep_going:
                raise RunFailed(message) from exc
            self.failures[str(path)] = message


def fit(
    work: TrainingSetup,
    *,
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    reduce: Callable[[dict], dict] = lambda m: m,
    keep_going_on_write_error: bool = False,
) -> dict[str, Any]:
    """Train ``work`` for its configured epochs/steps.

    Every epoch: evaluate (when configured), append a JSON line to ``log_path``, and
    atomically write ``checkpoint_dir/last.ckpt``.  With ``resume`` the run continues
    from that checkpoint; on CPU with the same seed it ends with the same weights as an
    uninterrupted run.  ``reduce`` combines per-rank metrics (identity when not
    distributed).  A log or checkpoint that cannot be written raises :class:`RunFailed`
    naming the path and errno; with ``keep_going_on_write_error`` training goes on and
    the failures are returned in ``output_errors``.
    """
    cfg, state = work.cfg, work.state
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if resume:
        if ckpt is None:
            raise HpmlError("--resume needs --checkpoint-dir")
        load_checkpoint(ckpt, state, cfg)
    if ckpt is not None and work.is_main:
        sweep_stale_tmp(ckpt)  # left by a run killed while writing (kill -9)
    log = Path(log_path) if (log_path and work.is_main) else None
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    outputs = OutputWrites(keep_going_on_write_error)
    history: list[dict] = []
    last_good: dict = {}
    total_steps, accum = work.total_steps, work.settings.accum_steps
    train_seconds = 0.0
    train_samples = 0
    remaining = max(total_steps - state.step, 0)
    warm_left = min(WARMUP_STEPS, remaining - 1) if remaining > 1 else remaining  # steps still warming up
    warmup = {"steps": warm_left, "seconds": 0.0, "samples": 0}
    state.model.train()
    while state.epoch < work.num_epochs and state.step < total_steps:
        epoch = state.epoch
        set_epoch(work.train_loader, epoch, cfg.seed)
        steps_this_epoch = min(work.steps_per_epoch, total_steps - state.step)
        bar = tqdm(total=steps_this_epoch, desc=f"epoch {epoch + 1}/{work.num_epochs}",
                   disable=not (progress and work.is_main), leave=False, unit="step")
        losses: list[torch.Tensor] = []
        first_step = state.step
        samples = 0
        warm_at: tuple[float, int] | None = None  # (time, samples) when warm-up ended in this epoch
        warming = warm_left > 0
        synchronize(state.device)
        start = time.perf_counter()
        try:
            for group in micro_groups(work.train_loader, accum):
                losses.append(train_step(state, group))
                samples += sum(y.shape[0] for _, y in group)
                if warm_left:
                    warm_left -= 1
                    if not warm_left:
                        synchronize(state.device)  # device sync: the warm-up steps are done
                        warm_at = (time.perf_counter(), samples)
                bar.update(1)
                # No loss read-back here: it would sync the device inside the timed steps and
                # drain the queue the host keeps ahead; losses are checked after the epoch.
                if state.step >= total_steps or len(losses) >= steps_this_epoch:
                    break
        except Exception as exc:
            if is_out_of_memory(exc):
                raise RunFailed(oom_message(work)) from exc
            raise
        finally:
            bar.close()
        synchronize(state.device)
        seconds = time.perf_counter() - start
        check_finite(losses, first_step, epoch, last_good)  # one device sync, untimed
        state.epoch += 1
        train_seconds += seconds
        train_samples += samples
        if warm_at is not None:
            warmup["seconds"] += warm_at[0] - start
            warmup["samples"] += warm_at[1]
        elif warming:  # the whole epoch was warm-up
            warmup["seconds"] += seconds
            warmup["samples"] += samples
        metrics: dict[str, Any] = {
            "epoch": state.epoch,
            "step": state.step,
            "train_loss": torch.stack(losses).mean().item() if losses else float("nan"),
            "lr": state.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "samples": samples,
            "samples_per_s": samples / seconds if seconds > 0 else float("nan"),
        }
        if cfg.evaluate:
            evaluation = evaluate(state, work.test_loader)
            metrics.update({f"test_{k}" if k in ("loss", "samples") else k: v for k, v in evaluation.items()})
        metrics = reduce(metrics)
        history.append(metrics)
        last_good = {k: metrics[k] for k in ("epoch", "train_loss", "accuracy") if k in metrics}
        if log:
            outputs("log", log, lambda: append_jsonl(log, metrics))
        if ckpt is not None and work.is_main:
            outputs("checkpoint", ckpt, lambda: save_checkpoint(ckpt, state, config=cfg.as_dict(), metrics=metrics))
        if on_epoch is not None:
            on_epoch(metrics)
    return {
        "epochs": history,
        "steps": state.step,
        "train_seconds": train_seconds,  # s, warm-up included
        "train_samples": train_samples,
        # the first steps (compile, autotune, allocator growth), inside train_seconds
        "warmup_steps": warmup["steps"] - warm_left,
        "warmup_seconds": warmup["seconds"],
        "warmup_samples": warmup["samples"],
        "final": history[-1] if history else {},
        "output_errors": list(outputs.failures.values()),
    }
