"""The matrix printed at the end of ``pytest benchmarks``, and significance vs the noise floor."""

from __future__ import annotations

from hpml.bench import matrix, screen, skips
from hpml.bench.profiles import get_profile


def row(phase, dataset, optimization, speedup=1.0, interval=None, busy=False, optimizer=None, aa=None):
    return {"phase": phase, "dataset": dataset, "device": "cpu", "optimization": optimization,
            "optimizer": optimizer, "speedup_vs_baseline": speedup, "speedup_interval": interval,
            "speedup_pairs": 10 if interval else 0, "busy": busy, "aa_control": aa}


def test_cells_read_a_speedup_with_its_interval_or_a_tilde():
    rows = [
        row("train", "cifar10", "baseline", aa={"speedup": 1.0, "interval": [0.97, 1.04], "pairs": 8}),
        row("train", "cifar10", "amp", 1.87, [1.84, 1.90]),
        row("train", "cifar10", "channels_last", 1.03, [1.01, 1.05]),  # inside the floor
        row("train", "cifar10", "grad_accum", 1.2, [0.9, 1.5]),  # interval holds 1.0
        row("train", "digits", "amp", 0.5, [0.45, 0.55], busy=True),
    ]
    floors = screen.finalize(rows)
    assert floors["train"]["interval"] == [0.97, 1.04] and floors["train"]["controls"] == 1
    assert [r.get("speedup_significant") for r in rows[1:]] == [True, False, False, True]
    lines = screen.render(rows, floors, busy_rows=1)
    text = "\n".join(lines)
    amp = next(line for line in lines if line.strip().startswith("amp"))
    assert "1.87x[1.84,1.90]" in amp and "0.50x[0.45,0.55]!" in amp
    assert next(line for line in lines if "channels_last" in line).split()[1:] == ["~", "·"]
    assert "noise floor" in text and "train 0.97-1.04" in text
    assert "1 rows measured on a busy machine: their numbers are unreliable" in text


def test_a_lopsided_interval_reads_with_both_its_ends():
    """end_to_end[imagenet-optimized] stored [1.46, 2.34] and the screen printed 1.53x±0.44 (1.09-1.97)."""
    rows = [row("end_to_end", "imagenet", "optimized", 1.53, [1.46, 2.34]),
            row("load", "amazon_polarity", "device_loader", 18.44, [16.89, 19.99])]
    screen.finalize(rows)
    assert screen.cell(rows[0]) == "1.53x[1.46,2.34]"
    assert screen.cell(rows[1]) == "18.4x[16.9,20.0]"
    assert len(screen.cell(rows[1])) + 1 < screen.CELL


def _default_cpu_rows() -> list[dict]:
    """Every row a default CPU run measures, as a significant cell, with its model, as
    ``extra_info`` holds it: the matrix's phases, the ``overhead`` rows (against a reference)
    and the CPU DDP rows (unpaired: no interval)."""
    from hpml.bench.ddp import ddp_cases

    profile = get_profile("smoke")
    cases = (matrix.train_cases(profile) + matrix.inference_cases(profile) + matrix.loading_cases(profile)
             + matrix.end_to_end_cases(profile) + matrix.preprocess_cases(profile) + matrix.overhead_cases(profile))
    rows = []
    for case in cases:
        if case.device != "cpu" or skips.skip_reason(case, profile) or case.settings(profile).compile:
            continue
        aa = {"speedup": 1.0, "interval": [0.98, 1.02], "pairs": 8} if case.is_baseline else None
        r = row(case.phase, case.label, case.optimization, 1.5, [1.45, 1.55], optimizer=case.optimizer, aa=aa)
        r["model"] = case.model
        if case.phase == "overhead":
            r.update(reference="handwritten", aa_control=None)
        r["dataset_aliases"] = skips.dataset_aliases_of(case, profile)
        r["stands_for"] = skips.end_to_end_stands_for(case, profile)
        rows.append(r)
    for case in ddp_cases(profile):
        if case.device == "cpu" and not skips.skip_reason(case, profile):
            # busy-marked, the widest a ddp cell gets ("1.05x?!"): a busy run must fit too
            rows.append(dict(row("ddp", case.label, case.optimization, 1.05, busy=True), model=case.model))
    return rows


def test_the_default_cpu_matrix_fits_one_screen():
    """Every smoke row a default CPU run measures, as a significant cell: <= 40 lines."""
    rows = _default_cpu_rows()
    assert {r["phase"] for r in rows} >= {"train", "inference", "load", "end_to_end", "preprocess", "overhead", "ddp"}
    assert {r["model"] for r in rows if r["phase"] == "train"} == {"resnet50", "xlnet"}
    floors = screen.finalize(rows)
    lines = screen.render(rows, floors, busy_rows=3)
    assert len(lines) <= 40, "\n".join(lines)
    assert max(len(line) for line in lines) <= 160
    # ResNet-50 on images and XLNet on text share the rows: one `amp` row per phase, not one per model
    assert sum(line.strip().startswith("amp ") for line in lines) == 2, "\n".join(lines)
    # DDP rows of ResNet-50 on CIFAR-10 and of XLNet on Amazon reviews: a line each
    assert any(line.startswith("ddp (c10): grad_accum ") for line in lines), "\n".join(lines)
    assert any(line.startswith("ddp (amz2): grad_accum ") for line in lines), "\n".join(lines)
    assert not any(line.strip().startswith("fsdp") for line in lines), "\n".join(lines)  # each ddp line whole
    assert any(line.startswith("overhead (c10): ") for line in lines)
    start = next(i for i, line in enumerate(lines) if line.startswith("measured once, same work"))
    same = " ".join(line.strip() for line in lines[start:] if line is lines[start] or line.startswith("  "))
    assert "c10, c100 = digits (train, inference)" in same and "amz5 = amz2 (train, inference)" in same
    assert "c100 = c10 (load, preprocess)" in same, same  # end to end, smoke leaves CIFAR's kind out
    assert "one dataset per kind of data (skip reasons say why): amz2 for amz5 (end_to_end)" in \
        " ".join(line.strip() for line in lines), "\n".join(lines)


def test_the_stored_default_run_fits_one_screen():
    """The rows of a real default run (tests/fixtures/default-run-49fee1d/, see docs/studies/default-runs.md)
    render in <= 40 lines."""
    import json
    from pathlib import Path

    (path,) = (Path(__file__).parents[2] / "tests/fixtures/default-run-49fee1d").glob("0001_*.json")
    rows = [b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]]
    lines = screen.render(rows, screen.finalize(rows), busy_rows=0)
    assert len(lines) <= 40, "\n".join(lines)
    # with what a run now adds: fresh-vs-fresh floors, the intervals line, the idle CPUs, busy rows
    from hpml.results.between_run import apply

    for phase in ("train", "inference", "end_to_end"):
        first = next(r for r in rows if r.get("fresh_process") and r["phase"] == phase)
        first["fresh_control"] = {"speedup": 1.0, "interval": [0.95, 1.06], "pairs": 6}
    apply(rows, {"kinds": {"load, worker processes": {"sd": 0.05}, "train": {"sd": 0.01}}})
    idle = {"policy": "awake", "held": True, "detail": "x", "cross_cpu_roundtrip_us": 5.3}
    lines = screen.render(rows, screen.finalize(rows), busy_rows=3, idle=idle)
    assert len(lines) <= 40, "\n".join(lines)
    assert any(line.startswith("intervals: within + between-run") for line in lines)
    assert "train 0.96-1.01 (fresh 0.95-1.06)" in " ".join(lines)
    train = lines.index(next(line for line in lines if line.startswith("train ")))
    assert lines[train].split() == ["train", "inet", "amz2", "digits"]
    assert lines[train + 1].split()[0] == "amp" and len(lines[train + 1].split()) == 4  # XLNet's cell beside ResNet-50's


def test_a_single_workload_phase_reads_on_one_line():
    rows = [row("ddp", "cifar10", "grad_accum", 1.05), row("ddp", "cifar10", "fsdp", 0.76)]
    assert screen.render(rows, {}, 0)[1] == "ddp (c10): grad_accum 1.05x?, fsdp 0.76x?"


def test_rows_without_paired_results_read_as_such():
    assert screen.cell(None) == "·"
    assert screen.cell(row("ddp", "cifar10", "fsdp", 0.8)) == "0.80x?"  # unpaired: no interval
    assert screen.cell(row("ddp", "cifar10", "fsdp", None)) == "-"


def test_several_models_on_one_dataset_each_keep_their_cells():
    """--hpml-models: two models' rows on one dataset do not overwrite each other's cell."""
    rows = [dict(row("train", "cifar10", "channels_last", 0.79, [0.75, 0.91]), model="timm:resnet18", speedup_significant=True),
            dict(row("train", "cifar10", "channels_last", 1.30, [1.20, 1.40]), model="torchvision:mobilenet_v3_small",
                 speedup_significant=True)]
    text = "\n".join(screen.render(rows, {}, 0))
    assert "timm:resnet18 channels_last" in text and "0.79x" in text
    assert "torchvision:mobilenet_v3_small channels_last" in text and "1.30x" in text
    one = "\n".join(screen.render([dict(rows[0], model="resnet50")], {}, 0))
    assert "resnet50" not in one  # one model per phase: rows stay short


def test_the_screen_of_a_stored_run_prints_and_bad_input_exits_2(tmp_path, capsys):
    import json

    run = tmp_path / "run.json"
    idle = {"policy": "awake", "held": True, "detail": "x", "cross_cpu_roundtrip_us": 5.3}
    run.write_text(json.dumps({"benchmarks": [{"name": "x", "fullname": "x", "extra_info": dict(
        row("train", "digits", "amp", 1.87, [1.84, 1.90]), speedup_significant=True, busy=True)}],
        "machine_info": {"hpml": {"cpu_idle": idle}}}))
    assert screen.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "1.87x[1.84,1.90]!" in out and "1 rows measured on a busy machine" in out
    assert "idle CPUs: kept awake (PM QoS 0 us request held); cross-CPU wake-up round trip 5 us" in out
    assert screen.main([str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json" in err
