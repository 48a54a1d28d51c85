"""Full runs: the epoch loop, its warm-up clock and the per-epoch metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from tqdm import tqdm

from hpml.errors import RunFailed, is_out_of_memory
from hpml.measure.timers import synchronize
from hpml.train.build import TrainingSetup
from hpml.train.outputs import RunOutputs
from hpml.train.step import Batch, evaluate, train_step

#: Warm-up steps at the start of a (resumed) run: the first pays compile, autotuning and allocator growth,
#: the second re-tunes what the first changed. A run of two or more steps keeps one steady step.
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
    """Make epoch ``epoch``'s order and augmentation depend only on (seed, epoch), as in an uninterrupted run."""
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


def epoch_metrics(work: TrainingSetup, losses: list[torch.Tensor], seconds: float, samples: int) -> dict[str, Any]:
    """The epoch's log line: loss, lr, time and throughput, and the evaluation when configured."""
    state = work.state
    metrics: dict[str, Any] = {
        "epoch": state.epoch,
        "step": state.step,
        "train_loss": torch.stack(losses).mean().item() if losses else float("nan"),
        "lr": state.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "samples": samples,
        "samples_per_s": samples / seconds if seconds > 0 else float("nan"),
    }
    if work.cfg.evaluate:
        evaluation = evaluate(state, work.test_loader)
        metrics.update({f"test_{k}" if k in ("loss", "samples") else k: v for k, v in evaluation.items()})
    return metrics


class WarmupClock:
    """Time and samples of a run's first WARMUP_STEPS optimizer steps, which stay inside its train time."""

    def __init__(self, remaining_steps: int) -> None:
        remaining = max(remaining_steps, 0)
        self.left = min(WARMUP_STEPS, remaining - 1) if remaining > 1 else remaining
        self.steps = self.left
        self.seconds = 0.0
        self.samples = 0
        self._warming = False
        self._warm_at: tuple[float, int] | None = None  # (time, samples) when warm-up ended in this epoch

    def start_epoch(self) -> None:
        self._warming = self.left > 0
        self._warm_at = None

    def step_done(self, device: torch.device, samples: int) -> None:
        if self.left:
            self.left -= 1
            if not self.left:
                synchronize(device)  # device sync: the warm-up steps are done
                self._warm_at = (time.perf_counter(), samples)

    def end_epoch(self, start: float, seconds: float, samples: int) -> None:
        if self._warm_at is not None:
            self.seconds += self._warm_at[0] - start
            self.samples += self._warm_at[1]
        elif self._warming:  # the whole epoch was warm-up
            self.seconds += seconds
            self.samples += samples

    def summary(self) -> dict[str, Any]:
        return {"warmup_steps": self.steps - self.left, "warmup_seconds": self.seconds, "warmup_samples": self.samples}


def train_epoch(work: TrainingSetup, clock: WarmupClock, progress: bool) -> tuple[list[torch.Tensor], float, int]:
    """One epoch of timed optimizer steps: (losses, seconds, samples)."""
    state, total_steps = work.state, work.total_steps
    set_epoch(work.train_loader, state.epoch, work.cfg.seed)
    steps_this_epoch = min(work.steps_per_epoch, total_steps - state.step)
    bar = tqdm(total=steps_this_epoch, desc=f"epoch {state.epoch + 1}/{work.num_epochs}",
               disable=not (progress and work.is_main), leave=False, unit="step")
    losses: list[torch.Tensor] = []
    samples = 0
    clock.start_epoch()
    synchronize(state.device)
    start = time.perf_counter()
    try:
        for group in micro_groups(work.train_loader, work.settings.accum_steps):
            losses.append(train_step(state, group))
            samples += sum(y.shape[0] for _, y in group)
            clock.step_done(state.device, samples)
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
    clock.end_epoch(start, seconds, samples)
    return losses, seconds, samples


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
    """Train ``work`` for its epochs/steps, evaluating, logging and checkpointing each epoch; ``resume`` continues
    from ``checkpoint_dir`` (bit-exact on CPU), ``reduce`` combines per-rank metrics."""
    state = work.state
    outputs = RunOutputs(work, log_path, checkpoint_dir, resume=resume, keep_going=keep_going_on_write_error)
    clock = WarmupClock(work.total_steps - state.step)
    history: list[dict] = []
    last_good: dict = {}
    train_seconds, train_samples = 0.0, 0
    state.model.train()
    while state.epoch < work.num_epochs and state.step < work.total_steps:
        first_step = state.step
        losses, seconds, samples = train_epoch(work, clock, progress)
        check_finite(losses, first_step, state.epoch, last_good)  # one device sync, untimed
        state.epoch += 1
        train_seconds += seconds
        train_samples += samples
        metrics = reduce(epoch_metrics(work, losses, seconds, samples))
        history.append(metrics)
        last_good = {k: metrics[k] for k in ("epoch", "train_loss", "accuracy") if k in metrics}
        outputs.write(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
    return {
        "epochs": history,
        "steps": state.step,
        "train_seconds": train_seconds,  # s, warm-up included
        "train_samples": train_samples,
        **clock.summary(),
        "final": history[-1] if history else {},
        "output_errors": list(outputs.failures.values()),
    }
