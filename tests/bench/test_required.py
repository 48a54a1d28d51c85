"""The required rows of a CUDA run (hpml.bench.required, .ci/gpu) and their check against a stored run."""

from __future__ import annotations

import json

import pytest
import torch

from hpml.bench import matrix, skips
from hpml.bench.profiles import get_profile
from hpml.bench.required import REQUIRED_PHASES, main, required_rows

PROFILE = get_profile("standard")

#: What the issue asks a GPU run to prove, phase by phase ("where they apply").
EXPECTED = {
    "train": {"baseline", "amp", "amp_bf16", "channels_last", "tf32", "cudnn_benchmark", "fused_optimizer",
              "grad_accum", "compile", "optimized"},
    "inference": {"baseline", "amp", "amp_bf16", "channels_last", "tf32", "cudnn_benchmark", "compile", "optimized"},
    "load": {"baseline", "device_loader", "pin_memory", "optimized"},
}


def test_the_required_rows_are_every_listed_optimization_where_it_applies():
    rows = required_rows(PROFILE)
    got = {phase: {r.case.optimization for r in rows if r.case.phase == phase} for phase in REQUIRED_PHASES}
    assert got == EXPECTED
    assert all(r.case.device == "cuda" and r.case.dataset == "cifar10" for r in rows)
    assert {r.case.optimizer for r in rows if r.case.phase == "train"} == {"sgd"}
    assert len({r.name for r in rows}) == len(rows)


def test_every_required_row_is_a_matrix_row_that_the_selection_measures(monkeypatch):
    """Collected alone, no required row is skipped by the matrix (alias, twin, not applicable) on a
    GPU with bf16; the fp16 AMP row is `amp` (what `amp_fp16` would be skipped as)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # an Ampere or newer GPU
    rows = required_rows(PROFILE)
    selected = frozenset(r.case for r in rows)
    makers = {"train": matrix.train_cases, "inference": matrix.inference_cases, "load": matrix.loading_cases}
    for row in rows:
        assert row.case in makers[row.case.phase](PROFILE), row.name
        assert skips.skip_reason(row.case, PROFILE, selected) is None, row.name
    amp = next(r.case for r in rows if r.case.phase == "train" and r.case.optimization == "amp")
    settings = amp.settings(PROFILE)
    assert settings.autocast_dtype is torch.float16 and settings.grad_scaler


def _run_json(path, names, unmeasured=()):
    rows = [{"name": n, "fullname": f"benchmarks/x.py::{n}", "stats": {"median": 0.01, "rounds": 16},
             "extra_info": {"samples_per_s": 1000.0, "rounds": 16}} for n in names]
    rows += [{"name": n, "stats": {"median": 0.0, "rounds": 1}, "extra_info": {"samples_per_s": None, "rounds": 0}}
             for n in unmeasured]  # --benchmark-disable: the body ran, nothing was measured
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": rows}))
    return path


def test_check_passes_when_every_required_row_was_measured(tmp_path, capsys):
    names = [r.name for r in required_rows(PROFILE)]
    a = _run_json(tmp_path / "bench.json", [n for n in names if "compile" not in n])
    b = _run_json(tmp_path / "bench-compile.json", [n for n in names if "compile" in n])
    assert main(["check", str(a), str(b)]) == 0
    assert f"all {len(names)} required rows measured" in capsys.readouterr().out


def test_check_fails_naming_each_row_missing_skipped_or_unmeasured(tmp_path, capsys):
    names = [r.name for r in required_rows(PROFILE)]
    skipped, missing, unmeasured = ("test_train_step[cifar10-cuda-amp-sgd]", "test_inference[cifar10-cuda-compile]",
                                    "test_loading[cifar10-cuda-pin_memory]")
    run = _run_json(tmp_path / "bench.json", [n for n in names if n not in (skipped, missing, unmeasured)],
                    unmeasured=[unmeasured])
    junit = tmp_path / "bench.xml"
    junit.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        f'<testcase classname="benchmarks.test_train_step" name="{skipped}">'
        '<skipped type="pytest.skip" message="amp_fp16 = amp on cuda (same settings): measured once, as amp"/>'
        '</testcase></testsuite></testsuites>')
    assert main(["check", str(run), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {skipped}: skipped: amp_fp16 = amp on cuda" in out
    assert f"FAIL {missing}: missing: not in the stored run" in out
    assert f"FAIL {unmeasured}: missing" in out
    assert f"3 of {len(names)} required rows not measured" in out


@pytest.mark.parametrize("content", ["{not json", '{"rows": []}'])
def test_check_of_an_unreadable_run_is_exit_2(tmp_path, capsys, content):
    path = tmp_path / "bench.json"
    path.write_text(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpml.bench.required: ") and len(err.strip().splitlines()) == 1

