"""The benchmark side of each phase (names declared in :mod:`hpml.results.phase_names`): its row generator and
workload builder, so a benchmark file is two lines (``benchmarks/test_train_step.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from hpml.bench import matrix, workloads
from hpml.bench.sides import Measured
from hpml.errors import HpmlError
from hpml.registry import Registry
from hpml.results.phase_names import PHASE_INFO, PhaseInfo


@dataclass(frozen=True)
class Phase:
    name: str
    cases: Callable[..., list[matrix.Case]]  # (profile, datasets=None, models=None) -> rows
    build: Callable[[matrix.Case, "workloads.BenchSession"], Measured]  # (case, session) -> one measured call
    # rows paired with the same case built by this instead of with their baseline row
    reference: Callable[[matrix.Case, "workloads.BenchSession"], Measured] | None = None

    def run(self, benchmark: object, session: "workloads.BenchSession", case: matrix.Case) -> None:
        """Measure one row of this phase (the body of its benchmark test)."""
        session.run(benchmark, case, self.build, reference=self.reference)

    def __post_init__(self) -> None:
        if self.name not in PHASE_INFO:
            raise HpmlError(f"phase {self.name!r} is not declared in hpml.results.phase_names ({', '.join(PHASE_INFO)})")

    @property
    def info(self) -> PhaseInfo:
        return PHASE_INFO[self.name]

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """``pytest_generate_tests`` of the phase's benchmark file."""
        from hpml.bench.plugin import parametrize_cases

        parametrize_cases(metafunc, self.cases)


PHASE_BUILDS: Registry[Phase] = Registry("benchmark phase")
for _phase in (
    Phase("preprocess", matrix.preprocess_cases, workloads.preprocess_workload),
    Phase("load", matrix.loading_cases, workloads.loading_workload),
    Phase("train", matrix.train_cases, workloads.train_step_workload),
    Phase("inference", matrix.inference_cases, workloads.inference_workload),
    Phase("end_to_end", matrix.end_to_end_cases, workloads.end_to_end_workload),
    Phase("overhead", matrix.overhead_cases, workloads.train_step_workload, reference=workloads.handwritten_step_workload),
):
    PHASE_BUILDS.add(_phase.name, _phase)
