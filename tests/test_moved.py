"""The screen's "moved since <run>" block (``--benchmark-compare``): rows beyond their kind's run-to-run noise."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from hpml.bench import moved, plugin

from test_history import TEMPLATE, sigma_of, write_history

TRAIN_SIGMA = sigma_of(0.059)  # the train step's run-to-run spread on the 2-core machine (test_history.py)


def rows() -> list[dict]:
    return json.loads(TEMPLATE.read_text())["benchmarks"]


def slowed(benchmarks: list[dict], name: str, factor: float) -> list[dict]:
    out = copy.deepcopy(benchmarks)
    for bench in out:
        if bench["name"] == name:
            bench["stats"]["median"] *= factor
    return out


def test_a_row_beyond_its_kinds_noise_moved_one_within_did_not() -> None:
    old = {b["fullname"]: b for b in rows()}
    now = slowed(slowed(rows(), "test_case[train-cifar10-cpu-sgd-channels_last]", 1.15),
                 "test_case[train-cifar10-cpu-sgd-baseline]", 1.03)
    lines = moved.moved_block(now, old, "0003_c4d5e6f7", {"train": TRAIN_SIGMA, "load, in process": 0.01})
    assert lines[0].startswith("moved since 0003_c4d5e6f7 (unpaired across runs")
    assert "hpml gate --base REV" in lines[0]
    assert lines[1] == "  train:cifar10:resnet50:cpu:sgd:channels_last  time +15.0% (train noise 5.9%)"
    assert len(lines) == 3  # the +3 % baseline is within the train step's 5.9 % noise
    assert lines[2].startswith("  8 row(s) within their kind's noise; not judged: ")
    assert "inference" in lines[2] and "train" not in lines[2].split("not judged")[1]


def test_nothing_moved_says_none() -> None:
    old = {b["fullname"]: b for b in rows()}
    lines = moved.moved_block(rows(), old, "run", {"train": TRAIN_SIGMA})
    assert lines[1] == "  none"


def test_noise_is_measured_from_the_stored_runs(tmp_path: Path) -> None:
    commits = [f"{i:02x}" * 20 for i in range(1, 21)]
    write_history(tmp_path / "storage", commits, list(range(20)), slow_from=99)
    run = json.loads(next((tmp_path / "storage").rglob("*.json")).read_text())
    sigmas = moved.stored_sigmas(tmp_path / "storage", run["machine_info"], {"smoke"})
    assert set(sigmas) >= {"train", "inference"}
    for sigma in sigmas.values():  # every row was written with the train step's noise
        assert 0.5 * TRAIN_SIGMA < sigma < 1.6 * TRAIN_SIGMA
    assert moved.stored_sigmas(tmp_path / "storage", run["machine_info"], {"large"}) == {}  # other profile


def test_the_plugin_adds_the_block_only_when_comparing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    benches = [SimpleNamespace(as_dict=lambda include_data, b=b: b) for b in slowed(
        rows(), "test_case[train-cifar10-cpu-sgd-channels_last]", 1.5)]
    monkeypatch.setattr(plugin, "_measured_rows", lambda config: benches)
    monkeypatch.setattr(moved, "stored_sigmas", lambda *a: {"train": TRAIN_SIGMA})
    session = SimpleNamespace(compared_mapping={}, storage=SimpleNamespace(path=tmp_path), get_machine_info=dict)
    config = SimpleNamespace(_benchmarksession=session, stash={})
    assert plugin._moved(config) == []
    session.compared_mapping = {str(tmp_path / "0001_abc.json"): {b["fullname"]: b for b in rows()}}
    lines = plugin._moved(config)
    assert lines[0].startswith("moved since 0001_abc") and "channels_last  time +50.0%" in lines[1]
