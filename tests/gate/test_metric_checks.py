"""Per-metric checks: every declared metric with a direction reaches the summary and can be gated.

Parametrized from :func:`hpml.results.metric_registry.gated`, so a newly registered metric is
covered here without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hpml.errors import HpmlError
from hpml.gate.config import GateConfig
from hpml.gate.checks import MISSING, OK, WORSE, check_metrics
from hpml.results.summary import summarize_rows
from hpml.results.runfiles import load_run
from hpml.results.metric_registry import METRICS, SUMMARY_EXCLUDE, gated

from .conftest import RUNS, SUMMARIES, read, write

GATED = [m.name for m in gated() if m.name not in SUMMARY_EXCLUDE]
AMP = "train:cifar10:resnet50:cpu:sgd:amp_bf16"


def _with_metric(summary: dict, name: str, value: float) -> dict:
    for row in summary["rows"]:
        if (row["phase"], row["dataset"], row["optimization"]) == ("train", "cifar10", "amp_bf16"):
            row["metrics"] = {name: value}
    return summary


@pytest.mark.parametrize("name", GATED)
def test_a_metric_the_row_recorded_reaches_its_summary_row(name: str) -> None:
    run = load_run(RUNS[-1])
    bench = next(b for k, b in run.benchmarks.items() if k.is_hpml and k.optimization == "amp_bf16")
    bench.extra[name] = 123.0
    rows = summarize_rows({bench.key: bench})
    assert rows[0]["metrics"][name] == 123.0


@pytest.mark.parametrize("name", GATED)
def test_a_gated_metric_fails_when_worse_than_the_reference_in_its_own_direction(name: str) -> None:
    metric = METRICS[name]
    worse, same = (50.0, 99.0) if metric.better == "higher" else (200.0, 101.0)
    reference = _with_metric(read(SUMMARIES[-1]), name, 100.0)
    config = GateConfig(metrics=(name,), tolerance=0.15)
    [check] = check_metrics(_with_metric(read(SUMMARIES[-1]), name, worse), reference, config)
    assert check.case == AMP and check.kind == f"{name}~ref" and check.verdict == WORSE
    [check] = check_metrics(_with_metric(read(SUMMARIES[-1]), name, same), reference, config)
    assert check.verdict == OK
    assert check_metrics(_with_metric(read(SUMMARIES[-1]), name, worse), reference, GateConfig()) == []  # not gated


def test_gated_metrics_run_from_pyproject_with_the_reference(gate, tmp_path: Path) -> None:
    name = GATED[0]
    worse = 50.0 if METRICS[name].better == "higher" else 200.0
    current = write(tmp_path / "current.json", _with_metric(read(SUMMARIES[-1]), name, worse))
    ref = write(tmp_path / "ref.json", _with_metric(read(SUMMARIES[-1]), name, 100.0))
    (tmp_path / "pyproject.toml").write_text(f'[tool.hpml.gate]\nmetrics = ["{name}"]\n')
    code, out, _ = gate("--summary", current, "--reference", ref)
    assert code == 1 and any(f"{name}~ref" in line and WORSE in line for line in out.splitlines())
    code, out, _ = gate("--summary", current)  # no reference: said, not silently skipped
    assert code == 0 and "are not checked" in out


def test_only_metrics_with_a_direction_can_be_gated() -> None:
    with pytest.raises(HpmlError, match="not a metric with a direction.*choose from .*peak_rss_bytes"):
        GateConfig(metrics=("epoch",))


def test_summaries_without_metrics_still_load_and_give_no_metric_check() -> None:
    old = read(SUMMARIES[0])
    assert all("metrics" not in row for row in old["rows"])  # written before metrics were declared
    assert check_metrics(old, old, GateConfig(metrics=tuple(GATED))) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, "absent", 0.0])
def test_a_current_row_without_a_reading_is_missing_not_ok(value) -> None:
    """Fail closed: a NaN, a missing value, or a 0 where every reading is > 0 (peak RSS) is
    MISSING; it used to give no check (exit 0) or, for a 0, a 100% improvement."""
    reference = _with_metric(read(SUMMARIES[-1]), "peak_rss_bytes", 100.0)
    current = _with_metric(read(SUMMARIES[-1]), "peak_rss_bytes", value)
    if value == "absent":
        for row in current["rows"]:
            row.pop("metrics", None)
    [check] = check_metrics(current, reference, GateConfig(metrics=("peak_rss_bytes",)))
    assert check.case == AMP and check.verdict == MISSING, check


def test_a_row_missing_from_the_current_summary_is_missing_for_its_metrics() -> None:
    reference = _with_metric(read(SUMMARIES[-1]), "peak_rss_bytes", 100.0)
    current = read(SUMMARIES[-1])
    current["rows"] = [r for r in current["rows"] if (r["phase"], r["dataset"], r["optimization"])
                       != ("train", "cifar10", "amp_bf16")]
    [check] = check_metrics(current, reference, GateConfig(metrics=("peak_rss_bytes",)))
    assert check.verdict == MISSING and "row missing" in check.note


def test_a_zero_is_a_reading_where_the_metric_can_be_zero() -> None:
    """Major faults can truly be 0: that is an improvement, not a missing value."""
    reference = _with_metric(read(SUMMARIES[-1]), "major_faults", 100.0)
    [check] = check_metrics(_with_metric(read(SUMMARIES[-1]), "major_faults", 0), reference,
                            GateConfig(metrics=("major_faults",)))
    assert check.verdict == OK
