"""pytest hooks and fixtures of the benchmark suite (re-exported by ``benchmarks/conftest.py``).

* ``--hpml-profile smoke|standard|full`` (default ``$HPML_BENCH_PROFILE``, else
  ``standard`` with CUDA and ``smoke`` without); an unknown name is a usage error.
* ``HPML_PLANTED_SLOWDOWN`` (testing the regression gate only): see
  :mod:`hpml.bench.harness`.
* Baseline rows run before the other rows of their group, so every row's same-run
  ``speedup_vs_baseline`` can be computed when it is measured.
* ``machine_info["hpml"]``: torch/torchvision/transformers/CUDA/cuDNN versions, GPU,
  CPU model, cores and threads, the profile.
* At session end, unless benchmarks were disabled or nothing was measured, a run
  summary of same-run speedups goes to ``<benchmark storage>/summaries/``
  (:mod:`hpml.gate.summary`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from hpml.bench.harness import BenchSession, planted_slowdown
from hpml.bench.matrix import Case, params
from hpml.bench.profiles import Profile, default_profile_name, get_profile, list_profiles
from hpml.bench.realdata import RealData
from hpml.errors import HpmlError

PROFILE_KEY = pytest.StashKey[Profile]()
SLOWDOWN_KEY = pytest.StashKey[float]()
SUMMARY_KEY = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hpml-bench", "hpml benchmarks")
    group.addoption(
        "--hpml-profile",
        default=None,
        help=f"benchmark profile: {', '.join(list_profiles())} (default: $HPML_BENCH_PROFILE, "
        "else standard with CUDA, smoke without)",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--hpml-profile") or default_profile_name()
    try:
        config.stash[PROFILE_KEY] = get_profile(name)
        config.stash[SLOWDOWN_KEY] = planted_slowdown()
    except HpmlError as err:
        raise pytest.UsageError(str(err)) from None


def profile_of(config: pytest.Config) -> Profile:
    return config.stash[PROFILE_KEY]


def parametrize_cases(metafunc: pytest.Metafunc, make_cases: Callable[[Profile], list[Case]]) -> None:
    """Parametrize a test's ``case`` argument with the rows ``make_cases`` generates."""
    if "case" in metafunc.fixturenames:
        profile = profile_of(metafunc.config)
        metafunc.parametrize("case", params(make_cases(profile), profile))


def _case(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("case") if callspec is not None else None
    return value if isinstance(value, Case) else None


def run_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` in the order they run: every baseline row moved just before the first row
    of its group (phase, dataset, device), so same-run speedups can be computed; rows
    that change process state for good (``Case.process_wide``) after all the others, so
    no row is measured in a process they changed.  Everything else keeps its order (a
    stable sort)."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        case = _case(item)
        if case is not None:
            first.setdefault(case.group, i)

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        i, item = pair
        case = _case(item)
        if case is not None and case.process_wide:
            return (1, i, 1)
        if case is not None and case.is_baseline:
            return (0, first[case.group], 0)
        return (0, i, 1)

    return [item for _, item in sorted(enumerate(items), key=key)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = run_order(items)


@pytest.fixture(scope="session")
def hpml_profile(request: pytest.FixtureRequest) -> Profile:
    """The session's benchmark profile."""
    return profile_of(request.config)


@pytest.fixture(scope="session")
def hpml_bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchSession]:
    """Per-session benchmark state: profile, same-run baselines, real-format data, caches."""
    from hpml.data import dataset_info, list_datasets

    profile = profile_of(request.config)
    value = request.config.getoption("--data-dir", None)  # declared by the root conftest
    data_dir = Path(value).expanduser() if value else None
    batch = max(profile.batch_size(dataset_info(name)) for name in list_datasets())
    # enough train samples for one measured call of any phase that reads real files
    samples = max(profile.load_batches, profile.e2e_batches * profile.accum_steps) * batch
    samples = max(samples, profile.preprocess_samples)
    real = RealData(data_dir, tmp_path_factory.mktemp("hpml-real-format"), profile, samples)
    yield BenchSession(profile, real, request.config.stash[SLOWDOWN_KEY])


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from hpml.machine import machine_info as hpml_machine_info

    info = hpml_machine_info()
    if PROFILE_KEY in config.stash:
        info["profile"] = config.stash[PROFILE_KEY].name
        info["planted_slowdown"] = config.stash[SLOWDOWN_KEY]
    machine_info["hpml"] = info


def write_run_summary(config: pytest.Config) -> Path | None:
    """The session's run summary (same-run speedups), or None when nothing was measured."""
    from hpml.gate.summary import build_summary, summary_path, write_summary

    bs = getattr(config, "_benchmarksession", None)
    if bs is None or bs.disabled:
        return None
    rows = [b for b in bs.benchmarks if b and not b.has_error]
    if not rows:
        return None
    machine_info = bs.get_machine_info()
    commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    profile = config.stash[PROFILE_KEY].name if PROFILE_KEY in config.stash else None
    summary = build_summary([b.as_dict(include_data=True) for b in rows], machine_info, commit_info, profile)
    storage = Path(getattr(bs.storage, "path", ".benchmarks"))
    return write_summary(summary_path(storage, summary), summary)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = write_run_summary(session.config)
    if path is not None:
        session.config.stash[SUMMARY_KEY] = path


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if SUMMARY_KEY in config.stash:
        terminalreporter.write_line(f"hpml: run summary written to {config.stash[SUMMARY_KEY]}")
