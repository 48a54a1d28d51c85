"""Time-to-accuracy runs: one case, one or several seeds, records written as they finish.

``seconds`` is cumulative training wall time (evaluation, set-up and checkpoints excluded);
``time_to_target_s`` is it at the end of the first epoch whose top-1 accuracy reaches the target."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hpml.convergence.recipes import ConvergenceCase
from hpml.convergence.records import group_id, make_record, write_record
from hpml.convergence.weights import Weights
from hpml.errors import RunFailed
from hpml.train.build import TrainingSetup, build_training
from hpml.train.fit import fit
from hpml.train.run_config import RunConfig

#: Accuracy difference (1 pp) that always counts as the same: a 3-seed std can come out near zero,
#: and bf16 rounding alone flips a handful of predictions (digits: 1 pp = 3.6 of 360 test images).
SPREAD_FLOOR = 0.01
#: Baseline standard deviations a mean may move and still be "within the spread".
SPREAD_STDS = 2.0

EPOCH_LOG = "epochs.jsonl"

#: ``(work, metrics)`` after each epoch: fault injection in tests, progress printing.
EpochHook = Callable[[TrainingSetup, dict], None]


@dataclass
class SeedRun:
    """One seed of a case, trained to the end of its recipe."""

    seed: int
    config: RunConfig
    epochs: list[dict[str, Any]]  # per epoch, `seconds` cumulative (training wall time)
    target: float

    @property
    def final_accuracy(self) -> float:
        return self.epochs[-1]["accuracy"] if self.epochs else float("nan")

    @property
    def time_to_target_s(self) -> float | None:
        return time_to_target(self.epochs, self.target)

    @property
    def reached(self) -> bool:
        return self.time_to_target_s is not None


@dataclass
class Summary:
    """Final accuracy over seeds.  ``std`` is the sample standard deviation (n-1), None for one seed."""

    seeds: list[int]
    accuracies: list[float]
    mean: float = field(init=False)
    std: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.mean = statistics.fmean(self.accuracies) if self.accuracies else float("nan")
        self.std = statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else None

    @property
    def spread(self) -> float:
        """max - min over seeds (0 for one seed)."""
        return max(self.accuracies) - min(self.accuracies) if self.accuracies else float("nan")

    def describe(self) -> str:
        std = "n/a" if self.std is None else f"{100 * self.std:.2f} pp"
        return (f"accuracy mean {100 * self.mean:.2f}% std {std} over {len(self.seeds)} seed(s) "
                f"(min {100 * min(self.accuracies):.2f}%, max {100 * max(self.accuracies):.2f}%)")


@dataclass
class CaseResult:
    case: ConvergenceCase
    runs: list[SeedRun]
    summary: Summary
    records: list[Path]


def time_to_target(epochs: Sequence[dict], target: float) -> float | None:
    """Cumulative seconds at the end of the first epoch with ``accuracy >= target``."""
    for e in epochs:
        if e.get("accuracy") is not None and e["accuracy"] >= target:
            return float(e["seconds"])
    return None


def cumulative(history: Sequence[dict]) -> list[dict[str, Any]]:
    """fit's per-epoch metrics -> the record's epochs: ``seconds`` cumulative, the epoch's own kept as ``epoch_seconds``."""
    out, total = [], 0.0
    for m in history:
        total += m["seconds"]
        row = {"epoch": m["epoch"], "seconds": total, "epoch_seconds": m["seconds"],
               "train_loss": m.get("train_loss"), "test_loss": m.get("test_loss"),
               "accuracy": m.get("accuracy"), "lr": m.get("lr"), "samples_per_s": m.get("samples_per_s")}
        if "top5" in m:
            row["top5"] = m["top5"]
        out.append(row)
    return out


def read_epoch_log(path: Path) -> list[dict]:
    """Per-epoch metrics from fit's log; an epoch logged twice (killed before its checkpoint) keeps its last line."""
    if not path.is_file():
        return []
    by_epoch: dict[int, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            m = json.loads(line)
            by_epoch[m["epoch"]] = m
    return [by_epoch[k] for k in sorted(by_epoch)]


def converge(
    case: ConvergenceCase,
    *,
    seed: int,
    device: str = "auto",
    data_dir: str | Path | None = None,
    weights: Weights | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    on_epoch: EpochHook | None = None,
    progress: bool = False,
) -> SeedRun:
    """Train one seed of ``case``; with ``run_dir`` each epoch is logged and checkpointed there, and
    ``resume`` continues a killed run, its curve keeping the epochs before the kill."""
    cfg = case.run_config(
        seed=seed, device=device, data_dir=data_dir,
        weights=weights.path if weights else None, tokenizer=weights.tokenizer if weights else None,
    )
    work = build_training(cfg)
    log = Path(run_dir) / EPOCH_LOG if run_dir is not None else None
    if log is not None and not resume:
        log.unlink(missing_ok=True)  # a fresh run must not inherit a previous run's curve
    hook = (lambda metrics: on_epoch(work, metrics)) if on_epoch is not None else None
    result = fit(work, log_path=log, checkpoint_dir=run_dir, resume=resume, progress=progress, on_epoch=hook)
    history = read_epoch_log(log) if log is not None else result["epochs"]
    return SeedRun(seed, cfg, cumulative(history), case.target.value)


def converge_case(
    case: ConvergenceCase,
    seeds: Sequence[int],
    *,
    store: str | Path,
    device: str = "auto",
    data_dir: str | Path | None = None,
    weights: Weights | None = None,
    work_dir: str | Path | None = None,
    on_epoch: EpochHook | None = None,
    progress: bool = False,
) -> CaseResult:
    """Run every seed of ``case``, writing each record as its seed finishes and the group summary at the end;
    a diverging seed's record holds ``error``, then :class:`RunFailed` names the case and seed."""
    group = group_id(case.name)
    runs: list[SeedRun] = []
    paths: list[Path] = []
    for seed in seeds:
        run_dir = Path(work_dir) / f"seed{seed}" if work_dir is not None else None
        seen: list[dict] = []  # the epochs a diverging run did finish, for its record

        def hook(work: TrainingSetup, metrics: dict) -> None:
            seen.append(metrics)
            if on_epoch is not None:
                on_epoch(work, metrics)

        try:
            run = converge(case, seed=seed, device=device, data_dir=data_dir, weights=weights,
                           run_dir=run_dir, on_epoch=hook, progress=progress)
        except RunFailed as exc:
            message = f"{case.name} seed {seed}: {exc}"
            cfg = case.run_config(seed=seed, device=device, data_dir=data_dir)
            partial = SeedRun(seed, cfg, cumulative(seen), case.target.value)
            write_record(make_record(case, group=group, seed=seed, run=partial, summary=None,
                                     error=message, weights=weights), store)
            raise RunFailed(message) from exc
        runs.append(run)
        paths.append(write_record(make_record(case, group=group, seed=seed, run=run,
                                              summary=Summary([seed], [run.final_accuracy]), weights=weights), store))
    summary = Summary([r.seed for r in runs], [r.final_accuracy for r in runs])
    for run in runs:  # same file names: the group summary replaces the per-seed one
        write_record(make_record(case, group=group, seed=run.seed, run=run, summary=summary, weights=weights), store)
    return CaseResult(case, runs, summary, paths)


def within_spread(candidate: Summary, baseline: Summary) -> tuple[bool, float, float]:
    """``(ok, difference, allowed)``: is ``candidate``'s mean within ``max(SPREAD_STDS * std_b, SPREAD_FLOOR)``
    of the baseline's? An unchanged optimization's difference has sd ``std * sqrt(2/n)``, so it passes ~98%."""
    allowed = max(SPREAD_STDS * (baseline.std or 0.0), SPREAD_FLOOR)
    diff = candidate.mean - baseline.mean
    return (math.isfinite(diff) and abs(diff) <= allowed), diff, allowed
