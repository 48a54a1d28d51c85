"""The report's per-workload detail panels: no empty panel, and bars that share a label say what differs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hpml.report import charts, details
from hpml.results.runfiles import load_run
from hpml.results.schema import CaseKey

from .conftest import run_files


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures and bar groups of the detail charts, as drawn (the PNGs are not written)."""
    out: list = []
    draw = charts.facet_hbars

    def facet(groups, metrics, **kwargs):
        out.append(("groups", [(name, [b.label for b in bars]) for name, bars in groups]))
        return draw(groups, metrics, **kwargs)

    def save(fig, path: Path) -> Path:
        out.append(("figure", fig))
        return path

    monkeypatch.setattr(charts, "facet_hbars", facet)
    monkeypatch.setattr(charts, "_save", save)
    return out


def with_ddp_rows(run):
    """The run plus a DDP panel: baseline and grad_accum with 1 and 2 processes."""
    train = next(b for k, b in run.benchmarks.items() if k.phase == "train" and k.optimization == "baseline")
    rows = dict(run.benchmarks)
    for world in (1, 2):
        for optimization in ("baseline", "grad_accum"):
            key = dataclasses.replace(train.key, phase="ddp", optimization=optimization, world_size=world)
            rows[key] = dataclasses.replace(train, key=key, median_s=train.median_s * world)
    return dataclasses.replace(run, benchmarks=rows)


def test_no_panel_is_drawn_empty(drawn: list, tmp_path: Path) -> None:
    run = load_run(run_files()[-1])
    details.details_sections(run, {}, tmp_path)
    figures = [fig for what, fig in drawn if what == "figure"]
    assert figures
    off = 0
    for fig in figures:
        for ax in fig.axes:
            if ax.axison:
                assert ax.patches, ax.get_title()  # every drawn panel has bars
            else:
                off += 1
    assert off >= 1  # the loading rows' FLOP/s panel was left out, not drawn empty


def test_bars_sharing_a_label_say_what_differs(drawn: list, tmp_path: Path) -> None:
    details.details_sections(with_ddp_rows(load_run(run_files()[-1])), {}, tmp_path)
    groups = dict(g for what, gs in drawn if what == "groups" for g in gs)
    assert groups["ddp · sgd"] == ["baseline (1 process)", "grad_accum (1 process)",
                                   "baseline (2 processes)", "grad_accum (2 processes)"]
    for labels in groups.values():
        assert len(labels) == len(set(labels))


def test_bar_labels() -> None:
    a = CaseKey("ddp", "cifar10", "resnet50", "cpu", "sgd", "baseline")
    b = dataclasses.replace(a, world_size=2)
    c = dataclasses.replace(a, optimization="fsdp", world_size=2)
    assert details.bar_labels([a, b, c]) == ["baseline (1 process)", "baseline (2 processes)", "fsdp"]
    m = dataclasses.replace(a, model="resnet18")
    assert details.bar_labels([a, m]) == ["baseline (resnet50)", "baseline (resnet18)"]
