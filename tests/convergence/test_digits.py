"""Real-data convergence on scikit-learn's bundled digits, on every machine.

* default run: one seed of the DIGITS recipe with ``optimized`` (ResNet-18 at 8 px, 3
  epochs; bf16 autocast + channels_last on CPU) reaches the digits target and writes a
  record the report can read;
* ``-m convergence -k digits``: baseline and several optimizations x ``--hpml-seeds``
  seeds (default 3) of the same recipe; each must reach the target, and each
  optimization's mean accuracy must stay within the baseline's seed spread
  (:func:`hpml.convergence.within_spread`).  Records go to ``.benchmarks/convergence/``.
"""

from __future__ import annotations

import time

import pytest

from hpml.convergence import DIGITS_OPTIMIZATIONS, CaseResult, digits_case, within_spread
from hpml.results.runfiles import load_convergence

from .harness import RESULTS, describe, run_case, seeds_from

#: Default number of seeds of the digits sweep (override with --hpml-seeds).
DIGITS_SEEDS = 3


def test_digits_run_reaches_target_and_records_time_to_target(request, tmp_path, few_threads):
    case = digits_case("optimized")
    start = time.perf_counter()
    result = run_case(request.config, case, [0], tmp_path / "records")
    wall = time.perf_counter() - start
    run = result.runs[0]
    assert run.reached, describe(result)
    assert [e["epoch"] for e in run.epochs] == list(range(1, case.recipe.epochs + 1))
    seconds = [e["seconds"] for e in run.epochs]
    assert seconds == sorted(seconds) and 0 < run.time_to_target_s <= seconds[-1]
    (path,) = result.records
    record = load_convergence(path)
    assert record.reached and record.time_to_target_s == run.time_to_target_s and record.target == case.target.value
    print(f"{case.name}: {100 * run.final_accuracy:.2f}% after {case.recipe.epochs} epochs, "
          f"target {100 * case.target.value:.0f}% at {run.time_to_target_s:.1f}s of training, {wall:.1f}s wall")


@pytest.fixture(scope="module")
def digits_sweep(request, convergence_store, few_threads_module):
    """``sweep(optimization) -> CaseResult``, each optimization run once per module."""
    seeds = seeds_from(request.config, DIGITS_SEEDS)
    done: dict[str, CaseResult] = {}

    def sweep(optimization: str) -> CaseResult:
        if optimization not in done:
            done[optimization] = run_case(request.config, digits_case(optimization), seeds, convergence_store)
        return done[optimization]

    return sweep


@pytest.mark.convergence
@pytest.mark.parametrize("optimization", DIGITS_OPTIMIZATIONS)
def test_digits_reaches_target(digits_sweep, optimization):
    result = digits_sweep(optimization)
    assert result.summary.mean >= result.case.target.value, describe(result)


@pytest.mark.convergence
@pytest.mark.parametrize("optimization", [o for o in DIGITS_OPTIMIZATIONS if o != "baseline"])
def test_digits_optimization_keeps_baseline_accuracy(request, digits_sweep, optimization):
    base, opt = digits_sweep("baseline"), digits_sweep(optimization)
    if len(base.summary.seeds) < 2:  # one seed has no spread: 1 pp would be judged against pure noise
        pytest.skip(f"the spread check needs >= 2 seeds; got --hpml-seeds {len(base.summary.seeds)}")
    ok, diff, allowed = within_spread(opt.summary, base.summary)
    message = (f"{optimization} mean {100 * opt.summary.mean:.2f}% vs baseline {100 * base.summary.mean:.2f}%: "
               f"difference {100 * diff:+.2f} pp, allowed +/-{100 * allowed:.2f} pp "
               f"(max(2 x baseline std, 1 pp))")
    print(message)
    request.config.stash.setdefault(RESULTS, []).append(f"spread check: {message}: {'ok' if ok else 'FAILED'}")
    assert ok, message


#: Models from other libraries run through the same recipe and must reach the same target.
#: (timm:resnet18 runs when timm is installed: `pip install -e '.[timm]'`.)
NAMED_MODELS = ["torchvision:resnet18", "timm:resnet18"]


@pytest.mark.convergence
@pytest.mark.parametrize("model", NAMED_MODELS)
def test_digits_named_model_reaches_target(request, tmp_path, few_threads, model):
    if model.startswith("timm:"):
        pytest.importorskip("timm", reason="timm is an optional extra: pip install -e '.[timm]'")
    case = digits_case("baseline", model=model)
    result = run_case(request.config, case, [0], tmp_path / "records")
    assert result.runs[0].reached, describe(result)
