"""The declared results records: a benchmark row's ``extra_info`` and ``hpml train``'s JSON.

Both writers fill these types; the keys are declared here once and checked by
``tests/bench/test_measured_records.py`` and ``tests/cli/test_cli.py``.
"""

from __future__ import annotations

from typing import Any, TypedDict

SCHEMA = 1
PEAK_FRACTION_OF = "measured matmul peak of peak_dtype (probe, this machine)"


class FlopsFields(TypedDict):
    """Achieved against peak FLOP/s, the part both records share (:func:`flops_fields`)."""

    achieved_flops: float | None  # FLOP/s
    peak_flops: float | None  # FLOP/s: the measured matmul peak of peak_dtype
    peak_dtype: str | None
    peak_fraction: float | None
    peak_fraction_of: str


def flops_fields(flops_per_sample: int | None, samples_per_s: float | None, peak_flops: float | None,
                 peak_dtype: str | None, devices: int = 1) -> FlopsFields:
    """Achieved FLOP/s and its fraction of the peak; ``devices`` ranks each have their own peak."""
    achieved = flops_per_sample * samples_per_s if flops_per_sample and samples_per_s else None
    return FlopsFields(
        achieved_flops=achieved, peak_flops=peak_flops, peak_dtype=peak_dtype,
        peak_fraction=achieved / (peak_flops * devices) if achieved and peak_flops else None,
        peak_fraction_of=PEAK_FRACTION_OF,
    )


class BenchRowOptional(TypedDict, total=False):
    """The keys some benchmark rows record besides :class:`BenchRow`'s."""

    reference: str  # interleaved reference steps: the speedup is over this side
    aa_control: dict[str, Any]  # the baseline paired with a second baseline
    aa_control_in: str  # the row holding this phase and model's A/A control
    fresh_control: dict[str, Any]
    fresh_control_in: str
    speedup_stop: str  # target | budget | max_pairs
    baseline_interleaved_s: list[float]
    phases: dict[str, Any]


class BenchRow(BenchRowOptional):
    """The keys every benchmark row records (:meth:`hpml.bench.session.BenchSession.run`).

    Besides these: every tracked metric (:func:`hpml.measure.tracker_registry.tracked_metrics`) and the
    workload's own ``Measured.extra`` (sizes, source details)."""

    hpml_schema: int
    phase: str
    optimization: str
    expanded_optimizations: list[str]  # what ran: composites (``optimized``) as their members
    dataset: str
    model: str | None
    device: str
    profile: str
    optimizer: str | None
    batch_size: int
    samples_per_round: int
    samples_per_s: float | None
    flops_per_sample: int | None
    achieved_flops: float | None
    peak_flops: float | None
    peak_dtype: str | None
    peak_fraction: float | None
    peak_fraction_of: str
    theoretical_peak_fraction: float | None  # of cores x rated clock x FLOP/cycle, where known
    theoretical_peak_basis: str
    peak_threads: int | None
    theoretical_peak_flops: float | None  # FLOP/s
    threads: int
    seed: int
    source: str | None
    rounds: int
    warmup_rounds: int
    planted_slowdown: float
    fresh_process: bool
    resource_regions: dict[str, str]
    speedup_vs_baseline: float | None
    speedup_interval: list[float] | None
    speedup_pairs: int
    speedup_halfwidth: float | None
    speedup_target_halfwidth: float
    speedup_significant: bool
    busy: bool
    busy_reason: str | None
    busy_evidence: dict[str, Any]
    aliases: list[str]
    dataset_aliases: list[str]
    stands_for: list[str]
    peak_flags: list[str]


class TrainRecord(FlopsFields):
    """``hpml train --json``'s record (:func:`hpml.train.run.build_record`)."""

    hpml_schema: int
    kind: str  # "train"
    config: dict[str, Any]
    params: int
    flops_per_sample: int
    phases: dict[str, Any]
    train_samples_per_s: float | None
    peak_threads: int | None
    peak_probes: list[float]
    peak_previous: float | None
    theoretical_peak_flops: float | None
    theoretical_peak_basis: str | None
    peak_flags: list[str]
    steps: int
    dropped_per_epoch: int  # training samples each epoch left out, all ranks
    epochs: int
    accuracy: float | None
    world_size: int
    machine: dict[str, Any]
    output_errors: list[str]  # outputs that could not be written, one line each


def declared_keys(record: type) -> frozenset[str]:
    return frozenset(record.__required_keys__ | record.__optional_keys__)  # type: ignore[attr-defined]
