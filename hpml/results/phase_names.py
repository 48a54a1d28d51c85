"""The phases a benchmark row or an ``hpml train`` run measures, declared once, in pipeline order, with
what each is for; torch-free.  How a phase's workload is built lives in :mod:`hpml.bench.phase_builds`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhaseInfo:
    name: str
    title: str  # how the report names it
    runs_model: bool = True  # False: rows have no model (loading, decoding)
    train: bool = False  # measured by ``hpml train``
    breakdown: bool = False  # one part of a training pipeline: the report's per-phase breakdown
    advice: bool = False  # the report's "which optimization to pick" advice covers it
    screen: int = 99  # place on the first screen (heatmaps, the session's speedup screen): training first


PHASE_INFO: dict[str, PhaseInfo] = {p.name: p for p in (
    PhaseInfo("preprocess", "Pre-processing", runs_model=False, train=True, breakdown=True, screen=4),
    PhaseInfo("load", "Loading", runs_model=False, train=True, breakdown=True, screen=3),
    PhaseInfo("train", "Training", train=True, breakdown=True, advice=True, screen=0),
    PhaseInfo("inference", "Inference", train=True, breakdown=True, advice=True, screen=1),
    PhaseInfo("end_to_end", "End to end", screen=2),
    PhaseInfo("ddp", "Distributed training", screen=5),
    PhaseInfo("overhead", "hpml's step vs a hand-written one", screen=6),  # the same work, interleaved
)}

PHASES: tuple[str, ...] = tuple(PHASE_INFO)


def phase_names(**flags: bool) -> tuple[str, ...]:
    """The phases whose flags (``train``, ``breakdown``, ``advice``, ``runs_model``) have the given values."""
    return tuple(p.name for p in PHASE_INFO.values() if all(getattr(p, k) == v for k, v in flags.items()))


def screen_rank(phase: str) -> tuple[int, str]:
    """Place of ``phase`` on the first screen (training first); unknown phases last, by name."""
    info = PHASE_INFO.get(phase)
    return (info.screen if info is not None else len(PHASES) + 99, phase)


def phase_rank(phase: str) -> int:
    """Pipeline position of ``phase``; unknown phases (older runs) sort last."""
    return PHASES.index(phase) if phase in PHASES else len(PHASES)
