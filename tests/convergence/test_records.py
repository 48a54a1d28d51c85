"""Records, time-to-target, seed statistics, weights and skip reasons: no training."""

from __future__ import annotations

import json

import pytest
import torch

from hpml.convergence import Summary, digits_case, find_weights, list_cases, time_to_target, within_spread
from hpml.convergence.records import make_record, read_records, write_record
from hpml.convergence.run import SeedRun, cumulative, read_epoch_log
from hpml.results.runfiles import discover, load_convergence

from .harness import skip_reasons

HISTORY = [  # fit's per-epoch metrics: `seconds` is that epoch's training time
    {"epoch": 1, "seconds": 2.0, "train_loss": 2.1, "test_loss": 1.9, "accuracy": 0.40},
    {"epoch": 2, "seconds": 2.5, "train_loss": 1.2, "test_loss": 1.0, "accuracy": 0.96, "top5": 1.0},
    {"epoch": 3, "seconds": 1.5, "train_loss": 0.7, "test_loss": 0.6, "accuracy": 0.97, "top5": 1.0},
]


def test_seconds_are_cumulative_and_time_to_target_is_the_first_epoch_reaching_it():
    epochs = cumulative(HISTORY)
    assert [e["seconds"] for e in epochs] == [2.0, 4.5, 6.0]
    assert [e["epoch_seconds"] for e in epochs] == [2.0, 2.5, 1.5]
    assert "top5" not in epochs[0] and epochs[1]["top5"] == 1.0
    assert time_to_target(epochs, 0.95) == 4.5
    assert time_to_target(epochs, 0.97) == 6.0
    assert time_to_target(epochs, 0.99) is None


def test_epoch_log_keeps_the_last_line_of_a_re_run_epoch(tmp_path):
    log = tmp_path / "epochs.jsonl"
    rows = [HISTORY[0], {**HISTORY[1], "accuracy": 0.5}, HISTORY[1], HISTORY[2]]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [m["accuracy"] for m in read_epoch_log(log)] == [0.40, 0.96, 0.97]
    assert read_epoch_log(tmp_path / "absent.jsonl") == []


def test_summary_mean_sample_std_and_spread():
    s = Summary([0, 1, 2], [0.96, 0.97, 0.98])
    assert s.mean == pytest.approx(0.97) and s.std == pytest.approx(0.01) and s.spread == pytest.approx(0.02)
    assert "mean 97.00% std 1.00 pp over 3 seed(s)" in s.describe()
    assert Summary([0], [0.9]).std is None


def test_within_spread_is_two_baseline_stds_with_a_one_point_floor():
    base = Summary([0, 1, 2], [0.96, 0.97, 0.98])  # std 1 pp -> allowed 2 pp
    assert within_spread(Summary([0, 1, 2], [0.951, 0.951, 0.951]), base)[0]  # -1.9 pp
    ok, diff, allowed = within_spread(Summary([0, 1, 2], [0.94, 0.94, 0.95]), base)
    assert not ok and allowed == pytest.approx(0.02) and diff == pytest.approx(-0.0267, abs=1e-4)
    tight = Summary([0, 1, 2], [0.97, 0.97, 0.97])  # std 0 -> the 1 pp floor
    assert within_spread(Summary([0], [0.961]), tight)[0]
    assert not within_spread(Summary([0], [0.955]), tight)[0]


def _run(seed=0):
    case = digits_case("baseline")
    return case, SeedRun(seed, case.run_config(seed=seed, device="cpu"), cumulative(HISTORY), case.target.value)


def test_record_is_atomic_complete_and_readable_by_the_report(tmp_path):
    case, run = _run()
    record = make_record(case, group="g_1", seed=0, run=run, summary=Summary([0, 1], [0.97, 0.95]))
    path = write_record(record, tmp_path)
    assert path.name == "g_1_seed0.json" and [p.name for p in tmp_path.iterdir()] == ["g_1_seed0.json"]
    obj = json.loads(path.read_text())
    for key in ("hpml_schema", "kind", "case", "dataset", "model", "optimizer", "optimization", "device",
                "pretrained", "target", "metric", "target_source", "reached", "time_to_target_s",
                "final_accuracy", "seeds", "accuracy_mean", "accuracy_std", "epochs", "config", "machine", "commit"):
        assert key in obj, key
    assert obj["kind"] == "convergence" and obj["case"] == "resnet18-digits-sgd-baseline"
    assert obj["reached"] and obj["time_to_target_s"] == 4.5 and obj["final_accuracy"] == 0.97
    assert obj["seeds"] == [0, 1] and obj["accuracy_mean"] == pytest.approx(0.96)
    loaded = load_convergence(path)  # the report's reader accepts it
    assert loaded.reached and loaded.time_to_target_s == 4.5 and [e.seconds for e in loaded.epochs] == [2.0, 4.5, 6.0]
    assert read_records(tmp_path, "resnet18-digits-sgd-baseline")[0]["group"] == "g_1"
    assert [r.case for r in discover([tmp_path]).convergence] == ["resnet18-digits-sgd-baseline"]


def test_a_failed_write_leaves_the_previous_record(tmp_path, monkeypatch):
    case, run = _run()
    path = write_record(make_record(case, group="g", seed=0, run=run, summary=None), tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_record(make_record(case, group="g", seed=0, run=run, summary=None), tmp_path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_non_finite_accuracies_are_null_in_json(tmp_path):
    case, run = _run()
    run.epochs[-1]["accuracy"] = float("nan")
    obj = json.loads(write_record(make_record(case, group="g", seed=0, run=run, summary=None), tmp_path).read_text())
    assert obj["final_accuracy"] is None and obj["epochs"][-1]["accuracy"] is None


def test_weights_are_found_by_their_documented_names(tmp_path):
    _, why = find_weights("resnet50", None)
    assert "--hpml-weights" in why and "HPML_WEIGHTS_DIR" in why and "resnet50.pth" in why
    _, why = find_weights("resnet50", tmp_path)
    assert str(tmp_path) in why and "resnet50.pth" in why
    torch.save({}, tmp_path / "resnet50.pth")
    assert find_weights("resnet50", tmp_path)[0].path == tmp_path / "resnet50.pth"
    xl = tmp_path / "xlnet-base-cased"
    xl.mkdir()
    (xl / "config.json").write_text("{}")
    _, why = find_weights("xlnet", tmp_path)
    assert "spiece.model" in why and "model.safetensors" in why
    (xl / "spiece.model").write_bytes(b"")
    (xl / "model.safetensors").write_bytes(b"")
    found, why = find_weights("xlnet", tmp_path)
    assert why is None and found.tokenizer == xl / "spiece.model"


def test_without_data_every_reason_is_named_at_once(tmp_path):
    case = next(c for c in list_cases() if c.name == "resnet50-cifar10-sgd-baseline-pretrained")
    reasons, weights = skip_reasons(case, None, None)
    text = "; ".join(reasons)
    assert weights is None
    assert "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}" in text  # the files
    assert "resnet50.pth" in text  # the weights
    if not torch.cuda.is_available():
        assert "needs CUDA" in text
    reasons, _ = skip_reasons(case, tmp_path, None)  # a data dir without the files
    assert "cifar10 not found under" in reasons[0] and "data_batch_1" in reasons[0]
    assert skip_reasons(digits_case(), None, None) == ([], None)  # bundled, CPU-sized
