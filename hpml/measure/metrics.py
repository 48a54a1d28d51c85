"""Every measured quantity, declared once: its unit, and how the values of several
processes (ranks, loader workers) combine into one.

:func:`hpml.distributed.metrics.combine` merges the ranks' dicts by these rules, so a
new metric states its rule here, next to its unit, instead of the reducer guessing from
its name.  Rules:

* ``sum``: each process's share adds up (samples, throughput, bytes read, page faults);
* ``max``: the worst process decides (durations: the step ends with the slowest rank;
  peak memory of one process);
* ``mean``: a plain mean over the processes (``train_loss``: every rank sees as many
  training samples);
* ``weighted``: a mean weighted by each process's evaluated samples (accuracy, test
  loss), which equals the value over the union of the shards;
* ``same``: identical on every process (epoch, step, learning rate, labels): rank 0's.
"""

from __future__ import annotations

from dataclasses import dataclass

RULES = ("sum", "max", "mean", "weighted", "same")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    combine: str  # one of RULES
    higher_is_better: bool | None = None  # None: not a figure of merit

    def __post_init__(self) -> None:
        if self.combine not in RULES:
            raise ValueError(f"metric {self.name}: combine must be one of {', '.join(RULES)}, got {self.combine!r}")


_DECLARED = (
    # counts and rates
    Metric("samples", "samples", "sum"),
    Metric("test_samples", "samples", "sum"),
    Metric("train_samples", "samples", "sum"),
    Metric("warmup_samples", "samples", "sum"),
    Metric("steady_samples", "samples", "sum"),
    Metric("samples_per_s", "samples/s", "sum", higher_is_better=True),
    # I/O, memory and faults of each process (workers' folded into their parent's)
    Metric("read_bytes", "bytes", "sum"),
    Metric("read_chars", "bytes", "sum"),
    Metric("dataset_bytes", "bytes", "sum"),
    Metric("minor_faults", "faults", "sum", higher_is_better=False),
    Metric("major_faults", "faults", "sum", higher_is_better=False),
    Metric("worker_minor_faults", "faults", "sum", higher_is_better=False),
    Metric("peak_rss_bytes", "bytes", "max", higher_is_better=False),
    Metric("peak_device_bytes", "bytes", "max", higher_is_better=False),
    # durations
    Metric("seconds", "s", "max", higher_is_better=False),
    Metric("train_seconds", "s", "max"),
    Metric("warmup_seconds", "s", "max"),
    Metric("steady_seconds", "s", "max"),
    # model quality
    Metric("train_loss", "nats", "mean", higher_is_better=False),
    Metric("accuracy", "fraction", "weighted", higher_is_better=True),
    Metric("top5", "fraction", "weighted", higher_is_better=True),
    Metric("loss", "nats", "weighted", higher_is_better=False),
    Metric("test_loss", "nats", "weighted", higher_is_better=False),
    # the same on every process
    Metric("epoch", "epochs", "same"),
    Metric("step", "steps", "same"),
    Metric("warmup_steps", "steps", "same"),
    Metric("lr", "learning rate", "same"),
    Metric("phase", "name", "same"),
    Metric("rss_method", "name", "same"),
)

METRICS: dict[str, Metric] = {m.name: m for m in _DECLARED}


def rule(name: str) -> str:
    """How ``name`` combines across processes; undeclared keys are taken from rank 0
    (``same``) -- tests/measure check that every key hpml records is declared."""
    metric = METRICS.get(name)
    return metric.combine if metric is not None else "same"
