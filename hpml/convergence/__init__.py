"""Convergence: does a run still reach its accuracy target, and how fast (README, Convergence)?
The tests live in tests/convergence (``pytest -m convergence tests/convergence``)."""

from hpml.convergence.recipes import (
    DIGITS,
    DIGITS_OPTIMIZATIONS,
    RECIPES,
    ConvergenceCase,
    Recipe,
    digits_case,
    list_cases,
    make_case,
)
from hpml.convergence.records import read_records, write_record
from hpml.convergence.run import CaseResult, SeedRun, Summary, converge, converge_case, time_to_target, within_spread
from hpml.convergence.targets import TARGETS, Target, list_targets, target_for
from hpml.convergence.weights import Weights, find_weights, weights_dir

__all__ = [
    "DIGITS", "DIGITS_OPTIMIZATIONS", "RECIPES", "TARGETS",
    "CaseResult", "ConvergenceCase", "Recipe", "SeedRun", "Summary", "Target", "Weights",
    "converge", "converge_case", "digits_case", "find_weights", "list_cases", "list_targets",
    "make_case", "read_records", "target_for", "time_to_target", "weights_dir", "within_spread",
    "write_record",
]
