"""Helpers shared by the convergence tests: skip reasons, running a case, describing it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pytest
import torch

from hpml.convergence import CaseResult, ConvergenceCase, Weights, converge_case, find_weights
from hpml.data import DATASETS, create_dataset
from hpml.errors import HpmlError, RunFailed

#: Result lines collected for the terminal summary (see conftest.pytest_terminal_summary).
RESULTS = pytest.StashKey[list]()


def seeds_from(config: pytest.Config, default: int) -> list[int]:
    """Seeds 0..N-1, N from ``--hpml-seeds`` or ``default``."""
    n = config.getoption("--hpml-seeds")
    n = default if n is None else n
    if n < 1:
        raise pytest.UsageError(f"--hpml-seeds must be >= 1, got {n}")
    return list(range(n))


def data_problem(dataset: str, data_dir: Path | None, tokenizer: Path | None = None) -> str | None:
    """Why ``dataset``'s real files cannot be read, naming the files; None when they can."""
    entry = DATASETS.get(dataset)
    info = entry.info
    if entry.bundled:  # digits: shipped with scikit-learn
        return None
    if data_dir is None:
        return (f"{dataset} not available: no --data-dir / $HPML_DATA_DIR given; expected {info.files} "
                f"(from {info.source})")
    try:  # one test sample: cheap, and reads the real files the run will read
        create_dataset(dataset, "test", data_dir=data_dir, synthetic=False, size=1, tokenizer=tokenizer)
    except HpmlError as exc:  # hpml.data raises HpmlError naming the missing files
        return str(exc)
    return None


def skip_reasons(case: ConvergenceCase, data_dir: Path | None,
                 weights: Path | None) -> tuple[list[str], Weights | None]:
    """Every reason ``case`` cannot run here (all of them, so one skip line says everything
    to fix), and the resolved weights."""
    reasons = []
    resolved = None
    if case.pretrained:
        resolved, why = find_weights(case.model, weights)
        if why:
            reasons.append(why)
    problem = data_problem(case.dataset, data_dir, resolved.tokenizer if resolved else None)
    if problem:
        reasons.insert(0, problem)
    if case.needs_gpu and not torch.cuda.is_available():
        reasons.append("needs CUDA for a full-size run: torch.cuda.is_available() is False on this machine")
    return reasons, resolved


def run_case(
    config: pytest.Config, case: ConvergenceCase, seeds: Sequence[int], store: Path, **kwargs
) -> CaseResult:
    """Run ``case`` over ``seeds``; a divergence becomes a test failure whose message names
    the case, seed, step, epoch and last good metrics (no traceback through fit)."""
    try:
        result = converge_case(case, seeds, store=store, **kwargs)
    except RunFailed as exc:
        pytest.fail(f"diverged: {exc}", pytrace=False)
    line = describe(result)
    print(line)  # shown with -s; the terminal summary repeats it
    config.stash.setdefault(RESULTS, []).append(line)
    return result


def describe(result: CaseResult) -> str:
    case, s = result.case, result.summary
    ttt = [r.time_to_target_s for r in result.runs]
    reached = sum(t is not None for t in ttt)
    ttt_text = ", ".join("-" if t is None else f"{t:.1f}s" for t in ttt)
    return (f"{case.name}: {s.describe()}; target {100 * case.target.value:.2f}% reached by {reached}/{len(ttt)} "
            f"seed(s), time to target {ttt_text}")


