"""``hpml report`` on recorded pytest-benchmark runs (tests/report/fixtures, see make_fixtures.py)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from hpml.errors import HpmlError
from hpml.cli import main as cli_main
from hpml.report import add_report_arguments, run_report
from hpml.results.metric_registry import METRICS

from .conftest import MACHINE_DIR, STORAGE, run_files


def report_main(argv: list[str]) -> int:
    """``hpml report ARGV`` in this process: the exit code."""
    return cli_main(["report", *argv])

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return run_report(parser.parse_args([str(a) for a in argv]))


def charts_in(folder: Path) -> set[str]:
    """The report's charts, as the report links them (``charts/x.png``)."""
    return {f"charts/{p.name}" for p in (folder / "charts").glob("*.png")}


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as img:
        img.verify()  # raises on a truncated or corrupt file
    with Image.open(path) as img:
        width, height = img.size
    assert 300 <= width <= 3000 and 200 <= height <= 2000, (path.name, img.size)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report of the whole fixture storage, shared by the checks below (charts take seconds)."""
    from .conftest import STORAGE

    out = tmp_path_factory.mktemp("report") / "out"
    assert report("--storage", STORAGE, "--out", out) == 0
    return out


def test_every_chart_is_a_valid_png(full_report: Path) -> None:
    names = charts_in(full_report)
    heatmaps = {f"charts/heatmap-cpu-{p}.png" for p in ("train", "inference", "end_to_end", "load")}
    assert heatmaps | {"charts/phases.png", "charts/convergence.png"} <= names
    assert any(n.startswith("charts/workload-cpu-cifar10") for n in names)
    assert "charts/trend.png" not in names  # the repo's gate pattern (digits) matches no fixture row
    for name in names:
        assert_valid_png(full_report / name)


def test_markdown_links_every_chart(full_report: Path) -> None:
    md = (full_report / "index.md").read_text()
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md))
    assert linked == charts_in(full_report)
    assert '<a id="row-train_cifar10_resnet50_cpu_sgd_amp_bf16"></a>train:cifar10:resnet50:cpu:sgd:amp_bf16 |' in md
    assert "matches a `[tool.hpml.gate.min_speedup]` pattern" in md  # no gated row in the fixtures


def test_html_links_every_chart_and_every_link_has_a_target(full_report: Path) -> None:
    html = (full_report / "index.html").read_text()
    drawn = {n for n in charts_in(full_report) if not n.startswith("charts/heatmap-")}  # HTML: a coloured table
    assert set(re.findall(r'<img [^>]*src="([^"]+)"', html)) == drawn
    ids = set(re.findall(r' id="([^"]+)"', html))
    targets = set(re.findall(r'href="#([^"]+)"', html))
    assert targets and targets <= ids  # every heatmap cell and sentence links a row that exists
    assert html.index('class="heatmap"') < html.index("What to use") < html.index("Details per workload")
    assert "<details" in html


def test_speedups_are_per_sample_and_from_the_latest_run(full_report: Path) -> None:
    md = (full_report / "index.md").read_text()
    row = next(line for line in md.splitlines() if "</a>train:cifar10:resnet50:cpu:sgd:grad_accum |" in line)
    speedup = float(row.split("|")[2].split("x")[0])
    # grad_accum does 3.5x the baseline's work for 4x its samples: ~1.14x, not the 0.29x of raw call times
    assert 0.9 < speedup < 1.5
    assert "Latest run: commit c4d5e6f7" in md


def test_one_run_explains_the_missing_trend(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert report(run_files()[0], "--out", out) == 0
    md = (out / "index.md").read_text()
    assert "trend.png" not in md and not (out / "charts" / "trend.png").exists()
    assert "Only one run" in md and "at least two" in md
    # no convergence records among the inputs: the page says how to produce them
    assert "pytest -m convergence tests/convergence" in md and not (out / "charts" / "convergence.png").exists()
    assert charts_in(out) == set(re.findall(r"\]\(([^)]+\.png)\)", md))


def test_phase_breakdown_from_per_phase_rows(tmp_path: Path) -> None:
    """Without end-to-end rows the breakdown is assembled from the load/train/inference rows."""
    run = json.loads(run_files()[-1].read_text())
    run["benchmarks"] = [b for b in run["benchmarks"] if (b.get("extra_info") or {}).get("phase") != "end_to_end"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    out = tmp_path / "out"
    assert report(path, "--out", out) == 0
    md = (out / "index.md").read_text()
    assert "per-phase benchmark rows" in md
    # load rows (dataset "cifar10-synthetic", no model) join the resnet50 rows of cifar10
    line = next(x for x in md.splitlines() if x.startswith("| cifar10 · cpu · resnet50 · baseline |"))
    assert line.count("|") == 7  # configuration, load, preprocess... : 5 phases columns + total
    assert_valid_png(out / "charts" / "phases.png")


def test_corrupt_file_skipped_and_seeded_convergence_records(storage: Path, tmp_path: Path) -> None:
    (storage / MACHINE_DIR / "0004_half_written.json").write_text('{"machine_info": {}, "benchm')
    for seed, error in ((0, None), (1, "diverged: loss is nan at epoch 2")):
        # the layout of hpml.convergence.records: one file per seed, extra keys, an error when stopped
        record = {"hpml_schema": 1, "kind": "convergence", "case": "resnet18-digits-sgd-baseline",
                  "group": "resnet18-digits-sgd-baseline_20261125T100000Z", "seed": seed, "device": "cpu",
                  "target": 0.95, "metric": "top1", "reached": error is None,
                  "time_to_target_s": 30.5 if error is None else None, "error": error,
                  "epochs": [{"epoch": e, "seconds": 12.0 * e, "epoch_seconds": 12.0, "train_loss": 1.0 / e,
                              "test_loss": 1.1 / e, "accuracy": 0.8 + 0.06 * e, "lr": 0.1, "samples_per_s": 150.0}
                             for e in range(1, 4 if error is None else 2)]}
        path = storage / "convergence" / f"{record['group']}_seed{seed}.json"
        path.write_text(json.dumps(record))
    out = tmp_path / "out"
    assert report("--storage", storage, "--out", out) == 0
    md = (out / "index.md").read_text()
    assert "## Skipped inputs" in md and "0004_half_written.json" in md and "not valid JSON" in md
    assert "| resnet18-digits-sgd-baseline | 1 | cpu | 95.0% | no (stopped: diverged" in md
    assert "| resnet18-digits-sgd-baseline | 0 | cpu | 95.0% | yes | 30.5 s |" in md
    assert_valid_png(out / "charts" / "convergence.png")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file"),
        ("{not json", "not valid JSON"),
        ('{"benchmarks": [], "machine_info": {}, "version": "5.3.1"}', "holds no benchmarks"),
        ('{"benchmarks": [{"name": "x", "stats": {"median": 1, "rounds": 1}}], "machine_info": {}, '
         '"version": "3.4.1"}', "pytest-benchmark 3.4.1"),
        ('{"benchmarks": [{"name": "x", "stats": {}}], "machine_info": {}, "version": "5.3.1"}', "stats.median"),
        ('{"rows": [], "hpml_schema": 1}', "not a pytest-benchmark run file"),
    ],
    ids=["empty", "corrupt", "no-benchmarks", "old-version", "no-stats", "summary-given"],
)
def test_bad_explicit_file_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(HpmlError, match=re.escape(message)) as err:
        report(path, "--out", tmp_path / "out")
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main(["--storage", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "no benchmark storage" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_main(["--storage", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "--benchmark-json" in capsys.readouterr().err
    assert report_main([str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_hpml_cli_wires_report_and_stale_charts_go(tmp_path: Path) -> None:
    from hpml.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "trend.png").write_bytes(PNG_MAGIC)  # from an earlier report with several runs
    (out / "notes.png").write_bytes(b"user file")  # not ours: left alone
    shutil.copy(run_files()[0], tmp_path / "run.json")
    assert main(["report", str(tmp_path / "run.json"), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
    assert not (out / "trend.png").exists() and (out / "notes.png").exists()
    (out / "charts" / "heatmap-cpu-ddp.png").write_bytes(PNG_MAGIC)  # a chart this report does not draw
    assert main(["report", str(tmp_path / "run.json"), "--out", str(out)]) == 0
    assert not (out / "charts" / "heatmap-cpu-ddp.png").exists()


def test_trend_leaves_out_runs_of_another_profile(tmp_path: Path) -> None:
    """A run with other workload sizes (another --hpml-profile) is not a point of the trend."""
    files = run_files()
    other = json.loads(files[0].read_text())
    for bench in other["benchmarks"]:
        (bench.get("extra_info") or {})["profile"] = "cpu"
    other["datetime"] = "2000-01-01T00:00:00.000000+00:00"  # the oldest run
    inputs = tmp_path / "runs"
    inputs.mkdir()
    for f in files:
        shutil.copy(f, inputs / f.name)
    (inputs / "0000_other_profile.json").write_text(json.dumps(other))
    out = tmp_path / "out"
    assert report(inputs, "--out", out, "--config", gate_pyproject(tmp_path, '"train:cifar10:cpu:amp_bf16" = 1.0')) == 0
    md = (out / "index.md").read_text()
    assert f"{len(files)} runs on this machine with profile smoke" in md
    assert "1 run(s) with another benchmark profile left out" in md


def gate_pyproject(folder: Path, line: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f"[tool.hpml.gate]\ntolerance = 0.0\n\n[tool.hpml.gate.min_speedup]\n{line}\n")
    return path


def paired_run(tmp_path: Path) -> Path:
    """The latest fixture run with the paired fields a benchmark row records added by hand.

    amp_bf16 (cifar10, train) is significant; channels_last has the larger estimate but an
    interval around 1.0, so it must read "~" and must not be recommended.
    """
    run = json.loads(run_files()[-1].read_text())
    for bench in run["benchmarks"]:
        extra = bench.get("extra_info") or {}
        if extra.get("optimization") in (None, "baseline"):
            continue
        significant = extra["optimization"] != "channels_last"
        estimate = 1.5 if significant else 3.0
        extra.update(speedup_vs_baseline=estimate, speedup_pairs=12, speedup_significant=significant,
                     speedup_interval=[1.4, 1.6] if significant else [0.8, 5.0], speedup_halfwidth=0.05,
                     speedup_target_halfwidth=0.05, busy=False, busy_reason=None, aliases=[],
                     dataset_aliases=["cifar100"] if (extra["optimization"], extra.get("dataset")) == ("amp_bf16", "cifar10") else [])
    path = tmp_path / "paired.json"
    path.write_text(json.dumps(run))
    return path


def test_paired_fields_fill_the_heatmap_and_what_to_use(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert report(paired_run(tmp_path), "--out", out) == 0
    md = (out / "index.md").read_text()
    heat = md[md.index("## Speedup at a glance"):md.index("## What to use")]
    line = next(x for x in heat.splitlines() if x.startswith("| `channels_last` |"))
    assert "[~](#row-train_cifar10_resnet50_cpu_sgd_channels_last)" in line  # not significant: "~"
    line = next(x for x in heat.splitlines() if x.startswith("| `amp_bf16` |"))
    assert "[1.50x](#row-train_cifar10_resnet50_cpu_sgd_amp_bf16)" in line and "*" not in line
    assert "Measured once, same work (their rows were skipped naming it): cifar100 = cifar10." in heat
    advice = md[md.index("## What to use"):md.index("## Speedup heatmaps, other phases")]
    row = next(x for x in advice.splitlines() if x.startswith("| cifar10 · resnet50 · sgd | train |"))
    assert "channels_last" not in row and "1.50x [1.40, 1.60]" in row
    assert "no interval" not in advice
    detail = next(x for x in md.splitlines() if "</a>train:cifar10:resnet50:cpu:sgd:channels_last |" in x)
    assert "| ~ (3.00x \\[0.80, 5.00\\]) |" in detail  # "~" everywhere, the numbers behind it (brackets: literal)


def test_old_runs_show_the_estimate_without_interval(full_report: Path) -> None:
    md = (full_report / "index.md").read_text()
    heat = md[md.index("## Speedup at a glance"):md.index("## What to use")]
    assert "x*](#row-" in heat and "`*`: no interval" in heat and "[~]" not in heat
    assert "(no interval)" in md[md.index("## What to use"):]


def test_gated_trend_marks_the_failed_runs(tmp_path: Path) -> None:
    """amp_bf16 on cifar10 sits between 1.0x and 3x in the fixtures: a 3x gate fails it in every run."""
    out = tmp_path / "out"
    config = gate_pyproject(tmp_path, '"train:cifar10:cpu:amp_bf16" = 3.0')
    assert report("--storage", STORAGE, "--out", out, "--config", config) == 0
    md = (out / "index.md").read_text()
    row = next(x for x in md.splitlines() if x.startswith("| train:cifar10:resnet50:cpu:sgd:amp_bf16 | train:"))
    assert "| 3.00x | 3 of 3 |" in row
    assert_valid_png(out / "charts" / "trend.png")
    assert report("--storage", STORAGE, "--out", out, "--config", gate_pyproject(
        tmp_path, '"train:cifar10:cpu:amp_bf16" = 0.5')) == 0
    md = (out / "index.md").read_text()
    assert "| 0.50x | 0 of 3 |" in md


def test_500_rows_paginate_and_no_image_is_taller_than_2000px(tmp_path: Path) -> None:
    run = json.loads(run_files()[-1].read_text())
    template = next(b for b in run["benchmarks"] if (b.get("extra_info") or {}).get("phase") == "train")
    rows = []
    for dataset in ("cifar10", "imagenet"):
        for i in range(250):
            bench = json.loads(json.dumps(template))
            bench["name"] = bench["fullname"] = f"test_train[{dataset}-{i}]"
            bench["extra_info"].update(dataset=dataset, optimization="baseline" if i == 0 else f"opt{i:03d}")
            bench["stats"]["median"] *= 1 + (i % 17) / 20  # varied speedups
            bench["stats"].pop("data", None)
            rows.append(bench)
    run["benchmarks"] = rows
    path = tmp_path / "big.json"
    path.write_text(json.dumps(run))
    out = tmp_path / "out"
    assert report(path, "--out", out) == 0
    names = charts_in(out)
    assert sum(n.startswith("charts/heatmap-cpu-train-") for n in names) >= 7  # 249 rows: pages of 36
    for name in names:
        assert_valid_png(out / name)


@pytest.mark.parametrize("median, message", [(0.0, "all-zero timings"), ("NaN", "timings are not numbers")])
def test_zero_or_nan_timings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], median, message) -> None:
    run = json.loads(run_files()[0].read_text())
    for bench in run["benchmarks"]:
        bench["stats"]["median"] = float(median)
        bench["stats"]["data"] = [float(median)] * 3
    path = tmp_path / "zero.json"
    path.write_text(json.dumps(run))  # json writes NaN as the bare token NaN, as pytest-benchmark would
    assert report_main([str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def _report_process(args: list[str]) -> None:
    import sys

    sys.exit(report_main(args))


def test_two_reports_into_one_folder_neither_crash_nor_mix(tmp_path: Path) -> None:
    """Two processes write reports of different runs into one --out at once.

    Forked, so they start without importing torch and matplotlib again (seconds each).
    """
    import multiprocessing

    out = tmp_path / "out"
    first, last = run_files()[0], run_files()[-1]
    fork = multiprocessing.get_context("fork")
    procs = [fork.Process(target=_report_process, args=([str(f), "--out", str(out)],)) for f in (first, last)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    md = (out / "index.md").read_text()
    linked = set(re.findall(r"\]\((charts/[^)]+\.png)\)", md))
    assert linked == charts_in(out)  # the charts on disk are the ones this index.md links, no other
    assert not [p for p in out.iterdir() if p.name.startswith(".charts")]  # no temp folder left


def test_accuracy_cost_comes_from_the_convergence_records() -> None:
    from hpml.report.glance import accuracy_cost
    from hpml.results.runfiles import load_convergence
    from hpml.results.schema import CaseKey

    records = [load_convergence(p) for p in sorted((STORAGE / "convergence").glob("*.json"))]
    by = {r.optimization: r.final_accuracy for r in records}
    key = CaseKey("train", "cifar10", "resnet50", "cpu", "sgd", "amp_bf16")
    expected = (by["amp_bf16"] - by["baseline"]) * 100
    assert accuracy_cost(records, key).startswith(f"{expected:+.1f} pp (resnet50, 1 vs 1 run(s))")
    assert accuracy_cost(records, key.with_optimization("channels_last")) == "not measured"
    assert accuracy_cost(records, CaseKey("train", "digits", "resnet50", "cpu", "sgd", "amp_bf16")) == "not measured"


@pytest.mark.parametrize("name", [m.name for m in METRICS.values() if m.report])
def test_every_report_metric_is_a_column_of_the_workload_tables(tmp_path: Path, name: str) -> None:
    """The per-workload tables loop over the declared metrics (report=True): a new one needs no report edit."""
    from hpml.report.details import details_sections
    from hpml.results.runfiles import load_run
    from hpml.report.render import Details, Table

    metric = METRICS[name]
    run = load_run(run_files()[-1])
    for bench in run.benchmarks.values():
        bench.extra[name] = 3 << 20
    [section] = details_sections(run, {}, tmp_path)
    tables = [b for d in section.blocks if isinstance(d, Details) for b in d.blocks if isinstance(b, Table)]
    assert tables
    for table in tables:
        column = list(table.header).index(metric.title or metric.name)
        assert all(row[column] == metric.text(3 << 20) for row in table.rows)
