"""The rows a CUDA run must measure (``.ci/gpu``), and the check of a stored run against them.

Every CUDA path of hpml shows in one: CIFAR-10 on ``cuda``, each of :data:`REQUIRED_OPTIMIZATIONS` in
each phase of :data:`REQUIRED_PHASES` where it changes something (``amp_fp16`` is ``amp`` there).

    python -m hpml.bench.required list      # the rows, as pytest node ids
    python -m hpml.bench.required check RUN.json [RUN.json ...] [--junit RUN.xml ...]

``check`` exits 1 naming every required row not measured (junit reports hold skip reasons); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from hpml.bench.matrix import (BASELINE, PHASE_VARIANTS, Case, affects_on, is_loader_only, optimizers_for,
                               registered_optimization)
from hpml.bench.profiles import Profile, get_profile
from hpml.errors import HpmlError
from hpml.train.optimizations import OPTIMIZATIONS

REQUIRED_OPTIMIZATIONS = (
    "baseline", "amp", "amp_bf16", "channels_last", "tf32", "cudnn_benchmark", "fused_optimizer", "grad_accum",
    "compile", "optimized", "device_loader", "pin_memory",
)
#: phase -> the benchmark file's test function (``benchmarks/<test>.py::<test>[<case id>]``)
REQUIRED_PHASES = {"train": "test_train_step", "inference": "test_inference", "load": "test_loading"}
REQUIRED_DATASET = "cifar10"
REQUIRED_DEVICE = "cuda"
PROFILE = "standard"


def applies(phase: str, name: str, device: str, profile: Profile) -> bool:
    """Whether ``name`` changes what a ``phase`` row measures on ``device``, from the registries alone."""
    if device not in OPTIMIZATIONS.get(registered_optimization(name)).devices:
        return False
    if name == BASELINE:
        return True
    if phase == "train":
        return not is_loader_only(name, device, profile)
    return ("forward" if phase == "inference" else "loader") in affects_on(name, device)


@dataclass(frozen=True)
class Required:
    case: Case

    @property
    def test(self) -> str:
        return REQUIRED_PHASES[self.case.phase]

    @property
    def name(self) -> str:
        """The row's test name, as pytest-benchmark's JSON and pytest's junit report store it."""
        return f"{self.test}[{self.case.id}]"

    @property
    def nodeid(self) -> str:
        return f"benchmarks/{self.test}.py::{self.name}"


def required_rows(profile: Profile | None = None, dataset: str = REQUIRED_DATASET,
                  device: str = REQUIRED_DEVICE) -> list[Required]:
    """The required rows, phase by phase in the matrix's row order (SGD for train rows)."""
    profile = profile or get_profile(PROFILE)
    rows = []
    for phase in REQUIRED_PHASES:
        for name in PHASE_VARIANTS[phase](profile):
            if name in REQUIRED_OPTIMIZATIONS and applies(phase, name, device, profile):
                optimizer = optimizers_for(name)[0] if phase == "train" else None
                source = "real" if phase == "load" else "synthetic"
                rows.append(Required(Case(phase, dataset, device, name, optimizer, source=source)))
    return rows


def _read(path: Path, parse) -> Any:
    try:
        return parse(path)
    except (OSError, ValueError, ET.ParseError) as err:
        raise HpmlError(f"cannot read {path}: {err}") from None


def measured_names(paths: Iterable[Path]) -> set[str]:
    """Test names of the rows a pytest-benchmark JSON holds with a measured throughput."""
    out = set()
    for path in paths:
        data = _read(Path(path), lambda p: json.loads(p.read_text()))
        rows = data.get("benchmarks") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise HpmlError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
        for row in rows:
            extra = row.get("extra_info") or {}
            if row.get("stats") and extra.get("samples_per_s") and extra.get("rounds"):
                out.add(str(row.get("name")))
    return out


def junit_outcomes(paths: Iterable[Path]) -> dict[str, str]:
    """Test name -> ``skipped: reason`` / ``failed: message`` from pytest junit reports."""
    out: dict[str, str] = {}
    for path in paths:
        root = _read(Path(path), lambda p: ET.parse(p).getroot())
        for case in root.iter("testcase"):
            for tag, word in (("skipped", "skipped"), ("failure", "failed"), ("error", "failed")):
                node = case.find(tag)
                if node is not None:
                    message = (node.get("message") or node.text or "").strip().splitlines()
                    out[case.get("name", "")] = f"{word}: {message[0] if message else '(no message)'}"
                    break
    return out


def check(rows: Sequence[Required], jsons: Sequence[Path], junits: Sequence[Path] = ()) -> list[tuple[Required, str]]:
    """Each required row and what the run did with it: ``measured``, or why not."""
    measured = measured_names(jsons)
    outcomes = junit_outcomes(junits)
    return [(row, "measured" if row.name in measured else outcomes.get(row.name, "missing: not in the stored run"))
            for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpml.bench.required", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the required rows as pytest node ids, one per line")
    checking = sub.add_parser("check", help="check stored benchmark JSON against the required rows")
    checking.add_argument("json", nargs="*", type=Path,
                          help="pytest-benchmark --benchmark-json files of the run (none: nothing was measured)")
    checking.add_argument("--junit", action="append", type=Path, default=[],
                          help="pytest --junitxml report of the same run (skip reasons); repeatable")
    args = parser.parse_args(argv)
    rows = required_rows()
    if args.command == "list":
        print("\n".join(r.nodeid for r in rows))
        return 0
    try:
        results = check(rows, args.json, args.junit)
    except HpmlError as err:
        print(f"hpml.bench.required: {err}", file=sys.stderr)
        return 2
    bad = [(row, outcome) for row, outcome in results if outcome != "measured"]
    for row, outcome in results:
        print(f"{'ok  ' if outcome == 'measured' else 'FAIL'} {row.name}: {outcome}")
    if bad:
        print(f"{len(bad)} of {len(results)} required rows not measured: {', '.join(r.name for r, _ in bad)}")
        return 1
    print(f"all {len(results)} required rows measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
