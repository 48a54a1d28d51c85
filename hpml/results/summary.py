"""The run summary: one small JSON per benchmark session with same-run speedups.

The benchmark plugin (:func:`hpml.bench.plugin.write_run_summary`) calls, at session finish::

    from hpml.results.summary import build_summary, summary_path, write_summary
    summary = build_summary(output_json["benchmarks"], output_json["machine_info"],
                            output_json["commit_info"], profile, noise_floor=floors)
    write_summary(summary_path(".benchmarks", summary), summary)

(``output_json`` as handed to the ``pytest_benchmark_update_json`` hook, or
``[b.as_dict(include_data=True) for b in session.benchmarks]``.)

Why a summary: a speedup measured *within one run* (optimization vs baseline, same
machine, same minutes) cancels the machine's speed, so summaries from a laptop and
a CI runner can be gated against each other; raw seconds cannot.

Speedups are ratios of throughputs, ``samples_per_s / baseline_samples_per_s``,
because grad_accum and friends process more samples per measured call.
``speedup_spread`` is the central 68 % percentile-bootstrap interval of that ratio
(the "one sigma" error bar): the rounds of the row and of its baseline are resampled
independently and the ratio of medians recomputed (:func:`hpml.results.stats.bootstrap_ratio`).
It says how precisely this run pinned the speedup down.  68 % rather than 95 %: with
the 5-10 rounds of a smoke run and a few rounds stretched 10x by a busy neighbour,
the 2.5 % / 97.5 % tails land on resamples made mostly of disturbed rounds and the
interval balloons (we saw [2.4, 20] around a clean 2.43x).  It is null without raw
data (``--benchmark-save-data``), with fewer than 3 rounds on either side, and for
baseline rows (a ratio of a row to itself).

Rows measured paired with their baseline (:mod:`hpml.bench.pairing`, every matrix row
since the paired harness) carry their own estimate in ``extra_info``: then ``speedup``
is that paired estimate, ``speedup_interval`` its 95 % bootstrap interval over the
pairs, ``pairs`` and ``halfwidth`` how many pairs and how precise, ``significant``
whether it is a change at all (interval excludes 1.0, estimate outside the phase's
noise floor), and ``busy`` / ``busy_reason`` whether something else used the cores.
Rows without them (older runs) keep the ratio of medians above, with ``significant``
null.  Top level: ``noise_floor`` (per phase, the A/A control: the baseline paired with
itself, as the benchmark plugin measured it; empty in a summary made afterwards from a
run file) and ``busy_rows``.

``world_size`` (processes of a DDP row, 1 for every other row) is part of a row's case:
the one-process and two-process DDP baselines are two rows, and each DDP row's speedup
is over the baseline of its own world size.  Summaries written before the field existed
read as world size 1.

Schema (``hpml_schema`` 1)::

    {"hpml_schema": 1, "created": "2026-01-01T00:00:00+00:00", "commit": "<full id>", "dirty": false,
     "profile": "smoke", "machine": {"cpu": "...", "cores": 2, "torch": "2.4.1", "gpu": null, "node": "...",
                                     "cpu_capability", "cpu_bf16", "system", "arch"},
     "rows": [{"phase", "dataset", "model", "device", "optimizer", "optimization", "world_size", "name",
               "median_s", "samples_per_round", "samples_per_s", "baseline_samples_per_s",
               "speedup", "speedup_spread": [lo, hi] | null, "rounds",
               "speedup_interval": [lo, hi] | null, "pairs", "halfwidth", "significant": bool | null,
               "busy": bool, "busy_reason": str | null,
               "metrics": {name: value}}],  # hpml.results.metrics.summary_metrics; absent in older summaries
     "noise_floor": {phase: {"speedup", "interval": [lo, hi], "halfwidth", "pairs"}}, "busy_rows": int}
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path
from typing import Any

from hpml.errors import HpmlError
from hpml.results.atomic import write_text_atomic
from hpml.results.machine import machine_facts
from hpml.results.schema import (
    KEY_FIELDS, Benchmark, CaseKey, Run, case_key, kind_of, read_json, run_from_json, unique_keys,
)
from hpml.results.stats import bootstrap_ratio
from hpml.results.metrics import summary_metrics

SCHEMA = 1
#: Where summaries live below the benchmark storage directory.
SUMMARY_DIR = "summaries"
HOW_TO_SUMMARIZE = (
    "run the benchmarks (`pytest benchmarks`), which write .benchmarks/summaries/<time>_<commit>.json, "
    "or pass a pytest-benchmark JSON file instead"
)
#: Fewer rounds than this on either side leave speedup_spread null: 1-2 rounds give no spread.
MIN_ROUNDS_FOR_SPREAD = 3
#: Central share of the bootstrap distribution reported as speedup_spread (16th-84th percentile).
SPREAD_LEVEL = 0.68
#: Row fields that, when present and not null, must be finite and > 0 (read side).
POSITIVE_FIELDS = ("speedup", "median_s", "samples_per_s", "baseline_samples_per_s", "samples_per_round")
#: Row fields that, when present and not null, are [low, high] intervals of the speedup.
INTERVAL_FIELDS = ("speedup_interval", "speedup_spread", "speedup_interval_within")


def _machine(machine_info: dict[str, Any]) -> dict[str, Any]:
    """The machine facts a reader of a summary needs, with the installed torch when the
    run did not record one."""
    facts = machine_facts(machine_info)
    if facts["torch"] is None:
        try:  # the installed version is what ran; metadata lookup does not import torch
            from importlib.metadata import version

            facts["torch"] = version("torch")
        except Exception:
            facts["torch"] = None
    return facts


def _rate_scale(row: Benchmark, base: Benchmark) -> float | None:
    """Factor turning a ratio of call times into a ratio of throughputs (samples per call).

    None when only one side knows its samples per call: the times are then not comparable.
    """
    spr, base_spr = row.samples_per_round, base.samples_per_round
    if spr is not None and base_spr is not None:
        return spr / base_spr
    if spr is None and base_spr is None:
        return 1.0  # both count calls: same work per call assumed
    return None


def _speedup(row: Benchmark, base: Benchmark) -> tuple[float | None, list[float] | None]:
    scale = _rate_scale(row, base)
    if scale is None or row.median_s <= 0:
        return None, None
    speedup = scale * base.median_s / row.median_s
    spread = None
    if row.data and base.data and min(len(row.data), len(base.data)) >= MIN_ROUNDS_FOR_SPREAD:
        # speedup = scale * median(base times) / median(row times)
        lo, hi = bootstrap_ratio(base.data, row.data, scale=scale, level=SPREAD_LEVEL)
        spread = [round(lo, 4), round(hi, 4)]
    return round(speedup, 4), spread


def _paired(bench: Benchmark) -> dict[str, Any]:
    """The paired-measurement fields of a row (null/False for rows from older runs)."""
    extra = bench.extra
    interval = extra.get("speedup_interval")
    has_interval = isinstance(interval, (list, tuple)) and len(interval) == 2
    significant = extra.get("speedup_significant")
    # a baseline row is its own reference, unless it was paired with one (interleaved reference steps)
    is_baseline = extra.get("optimization") == "baseline" and not extra.get("reference")
    return {
        "paired_speedup": bench.metric("speedup_vs_baseline") if has_interval else None,
        "speedup_interval": [float(v) for v in interval] if has_interval else None,
        "pairs": int(extra.get("speedup_pairs") or 0) if "speedup_pairs" in extra else None,
        "halfwidth": bench.metric("speedup_halfwidth"),
        "significant": (False if is_baseline else bool(significant)) if "speedup_significant" in extra else None,
        "busy": bool(extra.get("busy", False)),
        "busy_reason": extra.get("busy_reason") or None,
        "reference": extra.get("reference") or None,  # what the speedup is over, when not the baseline row
        # which interval the row carries (hpml.results.between_run): "within-run" or "within + between-run"
        "interval_kind": extra.get("interval_kind") or None,
        "interval_note": extra.get("interval_note") or None,
        "speedup_interval_within": extra.get("speedup_interval_within") or None,
        # what the row's number also stands for (hpml.bench.matrix): rows measured once for
        # several datasets, optimizations or kinds of data, and the row holding its A/A control
        "dataset_aliases": list(extra.get("dataset_aliases") or []),
        "aliases": list(extra.get("aliases") or []),
        "stands_for": list(extra.get("stands_for") or []),
        "aa_control_in": extra.get("aa_control_in") or None,
        "noise_floor_control": extra.get("noise_floor_control") or None,
    }


def summarize_rows(benchmarks: dict[CaseKey, Benchmark]) -> list[dict[str, Any]]:
    """One summary row per benchmark, with its same-run speedup vs the matching baseline."""
    rows = []
    for key, bench in benchmarks.items():
        base = benchmarks.get(key.with_optimization("baseline")) if key.is_hpml else None
        if base is bench:
            speedup, spread = 1.0, None  # the baseline against itself
        else:
            speedup, spread = (None, None) if base is None else _speedup(bench, base)
        row: dict[str, Any] = {f: (getattr(key, f) or None) if key.is_hpml else None for f in KEY_FIELDS}
        row["world_size"] = key.world_size
        paired = _paired(bench)
        row.update({
            "name": bench.name,
            "median_s": bench.median_s,  # s per call
            "samples_per_round": bench.samples_per_round,
            "samples_per_s": bench.samples_per_s,
            "baseline_samples_per_s": base.samples_per_s if base is not None else None,
            "speedup": speedup,
            "speedup_spread": spread,
            "rounds": bench.rounds,
            **paired,
            # every declared metric with a direction the row recorded (hpml.results.metrics)
            "metrics": summary_metrics(bench.extra),
        })
        if paired.get("paired_speedup") is not None:
            row["speedup"] = paired["paired_speedup"]  # the paired estimate wins over the ratio of medians
        row.pop("paired_speedup", None)
        rows.append(row)
    return rows


def build_summary(
    benchmarks: list[dict[str, Any]],
    machine_info: dict[str, Any] | None,
    commit_info: dict[str, Any] | None,
    profile: str | None = None,
    noise_floor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarize one session from pytest-benchmark's JSON rows (``output_json["benchmarks"]``).

    ``profile`` defaults to the single ``extra_info["profile"]`` of the rows, if they agree.
    ``noise_floor`` is per phase, as the writer measured it (:func:`hpml.bench.screen.floors`).
    """
    obj = {"benchmarks": list(benchmarks), "machine_info": machine_info or {}, "commit_info": commit_info or {}}
    if not benchmarks:
        raise HpmlError("build_summary: no benchmarks to summarize (were all of them skipped or deselected?)")
    run = run_from_json(obj, Path("<session>"), check_version=False)
    return summary_from_run(run, profile, noise_floor)


def summary_from_run(run: Run, profile: str | None = None,
                     noise_floor: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of an already loaded :class:`~hpml.results.schema.Run`.

    ``noise_floor`` (per phase) comes from the writer, which measured the A/A controls;
    a run file summarized afterwards (``hpml gate --summary RUN.json``) has none: ``{}``."""
    if profile is None and len(run.profiles) == 1:
        profile = next(iter(run.profiles))
    rows = summarize_rows(run.benchmarks)
    return {
        "hpml_schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": run.commit,
        "dirty": run.dirty,
        "profile": profile,
        "machine": _machine(run.machine_info),
        "rows": rows,
        "noise_floor": dict(noise_floor or {}),
        "busy_rows": sum(1 for r in rows if r["busy"]),
    }


def summary_path(storage_dir: Path | str, summary: dict[str, Any]) -> Path:
    """``<storage>/summaries/<UTC time>_p<pid>_<commit short>.json``, not yet taken; names
    sort in time order.  The process id (and a counter if needed) keeps two sessions
    finishing in the same second, e.g. concurrent autosaving runs, from overwriting
    each other's summary."""
    created = dt.datetime.fromisoformat(summary["created"]).astimezone(dt.timezone.utc)
    commit = str(summary.get("commit") or "unknown")[:8] + ("-dirty" if summary.get("dirty") else "")
    folder = Path(storage_dir) / SUMMARY_DIR
    stem = f"{created:%Y%m%dT%H%M%SZ}_p{os.getpid()}"
    path, n = folder / f"{stem}_{commit}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}_{commit}.json"
    return path


def write_summary(path: Path | str, summary: dict[str, Any]) -> Path:
    """Write atomically, so a reader (``hpml gate`` in another shell, a CI step) never
    sees half a file."""
    return write_text_atomic(path, json.dumps(summary, indent=2) + "\n", parents=True)


def _validate(obj: Any, path: Path) -> dict[str, Any]:
    kind = kind_of(obj)
    if kind == "run":
        # A pytest-benchmark file works too: summarize it on the fly.
        check_extra_info(obj, path)
        run = run_from_json(obj, path)
        validate_run(run)
        obj = summary_from_run(run)
    elif kind != "summary":
        raise HpmlError(f"{path}: not an hpml run summary (no 'hpml_schema' and 'rows'); {HOW_TO_SUMMARIZE}")
    if obj.get("hpml_schema") != SCHEMA:
        raise HpmlError(
            f"{path}: summary schema {obj.get('hpml_schema')!r}, this hpml reads schema {SCHEMA}; "
            "regenerate it by rerunning the benchmarks with this hpml"
        )
    rows = obj.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HpmlError(f"{path}: summary 'rows' is not a list of objects; the file is damaged; {HOW_TO_SUMMARIZE}")
    if not rows:
        raise HpmlError(f"{path}: summary holds no rows (no benchmark ran); {HOW_TO_SUMMARIZE}")
    for i, row in enumerate(rows):
        if not (row.get("name") or all(row.get(f) for f in ("phase", "dataset", "device", "optimization"))):
            raise HpmlError(f"{path}: summary rows[{i}] has neither 'name' nor phase/dataset/device/optimization")
        try:
            key = row_key(row)
        except HpmlError as exc:
            raise HpmlError(f"{path}: summary {exc}") from None
        validate_row(row, f"{path}: row {key.label}")
    return obj


def _bad(value: Any) -> bool:
    """Not a usable positive quantity: a string, a bool, NaN, inf, zero or negative."""
    return isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0


def validate_row(row: dict[str, Any], where: str) -> None:
    """Every number the gate reads from a summary row is finite and positive, or absent/null.

    A NaN or zero speedup is not "no data": it means the run measured nothing sensible,
    and a gate that let it through (NaN compares False with everything) would pass it.
    """
    for field in POSITIVE_FIELDS:
        value = row.get(field)
        if value is not None and _bad(value):
            raise HpmlError(f"{where}: {field} is {value!r}, expected a finite number > 0; "
                            "the run measured nothing usable or the file is damaged, rerun the benchmarks")
    for field in INTERVAL_FIELDS:
        value = row.get(field)
        if value is None:
            continue
        if not (isinstance(value, list) and len(value) == 2 and not any(map(_bad, value)) and value[0] <= value[1]):
            raise HpmlError(f"{where}: {field} is {value!r}, expected null or [low, high] with 0 < low <= high")
    metrics = row.get("metrics")
    if metrics is not None and not (isinstance(metrics, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in metrics.values())):
        raise HpmlError(f"{where}: metrics is {metrics!r}, expected an object of finite numbers")
    busy = row.get("busy")
    if busy is not None and not isinstance(busy, bool):
        raise HpmlError(f"{where}: busy is {busy!r}, expected true, false or null")


def check_extra_info(obj: dict[str, Any], path: Path) -> None:
    """pytest-benchmark writes ``extra_info: {}`` for a foreign benchmark; an explicit null means
    the file was damaged, and every hpml row would silently lose its identity (and its gate)."""
    for i, bench in enumerate(obj.get("benchmarks") or []):
        if isinstance(bench, dict) and "extra_info" in bench and bench["extra_info"] is None:
            name = bench.get("name") or f"benchmarks[{i}]"
            raise HpmlError(f"{path}: row {name}: extra_info is null (pytest-benchmark writes an object); "
                            "the file is damaged, rerun the benchmarks")


def validate_run(run: Run) -> None:
    """The timings of a pytest-benchmark run are finite and positive (zero seconds: nothing ran)."""
    for bench in run.benchmarks.values():
        values = [bench.median_s, *(bench.data or ())]
        if any(_bad(v) for v in values):
            bad = next(v for v in values if _bad(v))
            raise HpmlError(f"{run.path}: row {bench.key.label}: a timing is {bad!r} s, expected a finite "
                            "number > 0; the run measured nothing usable or the file is damaged")


def load_summary(path: Path | str) -> dict[str, Any]:
    """Read and validate a summary (a pytest-benchmark run file is summarized on the fly)."""
    path = Path(path)
    return _validate(read_json(path, "run summary", HOW_TO_SUMMARIZE), path)


def latest_summary(storage_dir: Path | str) -> Path:
    """The newest ``<storage>/summaries/*.json`` by name (names start with the UTC time)."""
    folder = Path(storage_dir) / SUMMARY_DIR
    candidates = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not candidates:
        raise HpmlError(f"no run summary in {folder}/; {HOW_TO_SUMMARIZE}")
    if not candidates[-1].is_file():  # fail closed: gating an older summary instead could pass a regression
        raise HpmlError(f"the newest run summary {candidates[-1]} is not a file; remove it or pass --summary")
    return candidates[-1]


def row_key(row: dict[str, Any]) -> CaseKey:
    """The :class:`CaseKey` of a summary row (same rules as for benchmark rows)."""
    bench = {"name": row.get("name"), "extra_info": {f: row.get(f) for f in KEY_FIELDS}}
    return case_key(bench)


def speedup_interval(row: dict[str, Any]) -> tuple[list[float] | None, str]:
    """The row's speedup interval and its name: the paired 95 % ``speedup_interval`` (newer
    summaries), else the 68 % ``speedup_spread`` (older ones), else (None, "no interval")."""
    if row.get("speedup_interval") is not None:
        return row["speedup_interval"], "95%"
    if row.get("speedup_spread") is not None:
        return row["speedup_spread"], "68%"
    return None, "no interval"


def keyed_rows(summary: dict[str, Any]) -> dict[CaseKey, dict[str, Any]]:
    """Summary rows by case key; duplicate cases get their benchmark name as variant
    (:func:`~hpml.results.schema.unique_keys`, the rule runs follow too)."""
    rows = summary["rows"]
    keys = unique_keys([row_key(row) for row in rows], [str(row.get("name")) for row in rows])
    twice = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
    if twice is not None:  # fail closed: the last copy would win silently
        raise HpmlError(f"the summary holds {twice.label} twice under one benchmark name; not gating it")
    return dict(zip(keys, rows))


__all__ = [
    "build_summary", "write_summary", "load_summary", "latest_summary", "summary_path", "summary_from_run",
    "summarize_rows", "keyed_rows", "row_key", "validate_row", "validate_run", "speedup_interval",
]
