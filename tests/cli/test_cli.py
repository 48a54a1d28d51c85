"""The ``hpml`` command line: records, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hpml.cli import main
from hpml.results.record import TrainRecord, declared_keys
from hpml.train import list_optimizations


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits on usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--device", "cuda"], "CUDA is not available"),
        (["train", "--dataset", "mnist"], "unknown dataset 'mnist'; registered: cifar10"),
        (["train", "--model", "vgg"], "unknown model 'vgg'; registered:"),
        (["train", "--opt", "amp_fp16", "--device", "cpu"], "amp_fp16 applies only to cuda"),
        (["train", "--opt", "turbo"], "unknown optimization 'turbo'"),
        (["train", "--opt", "grad_accum", "--accum-steps", "0"], "accum_steps must be >= 1"),
        (["train", "--model", "xlnet", "--dataset", "cifar10"], "cannot train on image dataset"),
        (["train", "--batch-size", "many"], "invalid int value"),
        (["train", "--dataset", "cifar10", "--data-dir", "/nonexistent/hpml", "--steps", "1"], "cifar"),
        (["fly"], "invalid choice"),
        (["train", "--opt", "ddp_static_graph", "--steps", "1"], "ddp_static_graph only applies to distributed runs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_train_writes_a_record_with_every_field(capsys, tmp_path):
    out_json = tmp_path / "out.json"
    code, out, err = run_cli(
        capsys, "train", "--model", "resnet18", "--dataset", "digits", "--device", "cpu", "--steps", "2",
        "--batch-size", "8", "--no-progress", "--json", str(out_json), "--log", str(tmp_path / "log.jsonl"),
    )
    assert code == 0, err
    assert "resnet18 on digits" in out and "samples/s" in out
    record = json.loads(out_json.read_text())
    assert set(record) == declared_keys(TrainRecord)  # the declared record, no more, no less
    assert record["params"] == 11_173_962
    assert set(record["phases"]) == {"preprocess", "load", "train", "inference"}
    for phase in record["phases"].values():
        assert {"seconds", "samples_per_s", "peak_rss_bytes", "peak_device_bytes", "read_bytes"} <= set(phase)
        assert phase["seconds"] > 0 and phase["samples_per_s"] > 0
    assert record["config"]["steps"] == 2 and record["steps"] == 2
    assert record["machine"]["torch"] == torch.__version__
    assert 0 < record["peak_fraction"] < 2  # achieved / measured matmul peak
    assert record["peak_fraction_of"].startswith("measured matmul peak")
    # the train phase's counters run around all of fit(): the label says evaluation is inside
    assert "evaluation" in record["phases"]["train"]["counters_cover"]


def test_python_dash_m_hpml_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hpml", "train", "--opt", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "hpml: error: unknown optimization 'nope'; registered: " + ", ".join(
        list_optimizations()
    )


def test_steps_default_test_size_is_capped_at_the_split() -> None:
    # Issue 14, group 4: --steps 100 --batch-size 8 on digits asked for 800 of its 360
    # test samples and exited 2; the quick-look test set is now at most the whole split.
    from hpml.cli import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(
        ["train", "--dataset", "digits", "--model", "resnet18", "--device", "cpu", "--steps", "100", "--batch-size", "8"]))
    assert cfg.test_size == 360
    small = config_from_args(build_parser().parse_args(
        ["train", "--dataset", "digits", "--model", "resnet18", "--device", "cpu", "--steps", "2", "--batch-size", "8"]))
    assert small.test_size == 16
