"""pytest hooks and fixtures of the benchmark suite (``benchmarks/conftest.py``; options: ``benchmarks/README.md``).
Rows run grouped by baseline; at the end significance is decided, the screen printed and a summary saved."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from hpml.bench import compat, screen
from hpml.bench.planted import planted_slowdown
from hpml.bench.session import BenchSession
from hpml.bench.idle import DEFAULT_POLICY, POLICIES, IdleState, idle_cpus, policy_from
from hpml.bench.matrix import Case, check_models, params
from hpml.bench.skips import EMULATED_ENV
from hpml.bench.pairing import Precision
from hpml.bench.profiles import Profile, default_profile_name, get_profile, list_profiles
from hpml.bench.realdata import RealData
from hpml.bench.storage import Unsaved, check_storage
from hpml.environment import check_environment
from hpml.errors import HpmlError
from hpml.results import between_run

PROFILE_KEY = pytest.StashKey[Profile]()
MODELS_KEY = pytest.StashKey[tuple]()  # --hpml-models (empty: each dataset's own model)
SLOWDOWN_KEY = pytest.StashKey[float]()
SUMMARY_KEY = pytest.StashKey[Path]()
PRECISION_KEY = pytest.StashKey[Precision]()
SCREEN_KEY = pytest.StashKey[list]()
FLOORS_KEY = pytest.StashKey[dict]()
SELECTED_KEY = pytest.StashKey[frozenset]()  # the session's rows after -k/-m (dataset twins resolve against them)
IDLE_POLICY_KEY = pytest.StashKey[str]()
IDLE_KEY = pytest.StashKey[IdleState]()
UNSAVED_KEY = pytest.StashKey[Unsaved]()  # end-of-session saves that failed, and where their JSON is kept
#: Exit status of a bad option value, as for the hpml CLI (pytest's own UsageError exits 4).
USAGE_EXIT = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hpml-bench", "hpml benchmarks")
    group.addoption(
        "--hpml-profile",
        default=None,
        help=f"benchmark profile: {', '.join(list_profiles())} (default: $HPML_BENCH_PROFILE, "
        "else standard with CUDA, smoke without)",
    )
    group.addoption(
        "--hpml-target-halfwidth", type=float, default=None, metavar="F",
        help="size each row, from its first pairs (the pilot), for a speedup 95%% interval half-width of F "
        "(relative, e.g. 0.02 = +-2%%; default: the profile's, smoke 0.05)",
    )
    group.addoption(
        "--hpml-row-budget", type=float, default=None, metavar="S",
        help="s of measured calls per row (both sides) after which a row stops pairing anyway "
        "(default: the profile's)",
    )
    group.addoption(
        "--hpml-models", default=None, metavar="NAMES",
        help="comma-separated models to run the matrix on instead of each dataset's own: registered "
        "(resnet18), a plugin's, or SOURCE:NAME (torchvision:mobilenet_v3_small, timm:resnet18, hf:bert); "
        "each runs on the datasets whose input it takes",
    )
    group.addoption(
        "--hpml-emulated", action="store_true", default=False,
        help="also measure every row of a dtype this CPU only emulates (bf16 without AVX512-BF16/AMX); "
        "by default one row (train on digits) measures it and the others are skipped, naming it",
    )
    group.addoption(
        "--hpml-idle", default=None, metavar="POLICY",
        help="idle CPUs while measuring: " + "; ".join(f"{k}: {v}" for k, v in POLICIES.items())
        + " (default: $HPML_BENCH_IDLE, else awake)",
    )
    group.addoption(
        "--hpml-tables", action="store_true", default=False,
        help="also print pytest-benchmark's per-group tables (long: one line per row)",
    )


def precision_from_options(profile: Profile, target: float | None, budget: float | None) -> Precision:
    """The profile's stop rule with ``--hpml-target-halfwidth`` / ``--hpml-row-budget`` applied."""
    try:
        return profile.precision(target, budget)
    except HpmlError as err:
        if target is None and budget is None:
            raise  # the profile's own values (or the environment's): no option to blame
        flag = "--hpml-target-halfwidth" if "target" in str(err) else "--hpml-row-budget"
        raise HpmlError(f"{flag}: {err}") from None


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_environment()  # a bad value skips no row later: exit 2 before the session starts
    except HpmlError as err:
        pytest.exit(f"hpml: {err}", returncode=USAGE_EXIT)
    name = config.getoption("--hpml-profile") or default_profile_name()
    try:
        profile = config.stash[PROFILE_KEY] = get_profile(name)
        config.stash[SLOWDOWN_KEY] = planted_slowdown()
    except HpmlError as err:
        raise pytest.UsageError(str(err)) from None
    try:
        config.stash[PRECISION_KEY] = precision_from_options(
            profile, config.getoption("--hpml-target-halfwidth"), config.getoption("--hpml-row-budget"))
    except HpmlError as err:
        pytest.exit(f"hpml: {err}", returncode=USAGE_EXIT)
    try:
        config.stash[IDLE_POLICY_KEY] = policy_from(config.getoption("--hpml-idle", None))
    except HpmlError as err:
        pytest.exit(f"hpml: --hpml-idle: {err}", returncode=USAGE_EXIT)
    if config.getoption("--hpml-emulated", False):
        os.environ[EMULATED_ENV] = "1"  # an environment variable: fresh-process rows see it too
    raw = config.getoption("--hpml-models", None)
    models = tuple(m.strip() for m in raw.split(",") if m.strip()) if raw else ()
    try:
        check_models(models)
    except HpmlError as err:
        pytest.exit(f"hpml: --hpml-models: {err}", returncode=USAGE_EXIT)
    config.stash[MODELS_KEY] = models
    wants_tables = any(config.getoption(o, None) for o in (
        "--hpml-tables", "benchmark_compare", "benchmark_histogram", "benchmark_verbose"))
    if not wants_tables and hasattr(config.option, "benchmark_quiet"):
        # read by pytest-benchmark after this hook: its long tables stay off
        config.option.benchmark_quiet = True


def profile_of(config: pytest.Config) -> Profile:
    return config.stash[PROFILE_KEY]


def parametrize_cases(metafunc: pytest.Metafunc, make_cases: Callable[..., list[Case]]) -> None:
    """Parametrize a test's ``case`` argument with the rows ``make_cases`` generates."""
    if "case" in metafunc.fixturenames:
        profile = profile_of(metafunc.config)
        models = metafunc.config.stash.get(MODELS_KEY, ()) or None
        metafunc.parametrize("case", params(make_cases(profile, models=models), profile))


def _case(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("case") if callspec is not None else None
    return value if isinstance(value, Case) else None


def run_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` in run order: rows sharing a baseline together, the baseline row first, fresh-process
    rows last (their server, holding torch, is then not resident while in-process memory is measured)."""
    first: dict[tuple, int] = {}
    for i, item in enumerate(items):
        case = _case(item)
        if case is not None:
            first.setdefault(case.baseline_key, i)

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int, int]:
        i, item = pair
        case = _case(item)
        if case is None:
            return (0, i, 0, i)
        return (int(case.process_wide), first[case.baseline_key], 0 if case.is_baseline else 1, i)

    return [item for _, item in sorted(enumerate(items), key=key)]


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: the rows that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = run_order(items)
    config.stash[SELECTED_KEY] = frozenset(c for c in map(_case, items) if c is not None)


@pytest.fixture(scope="session")
def hpml_profile(request: pytest.FixtureRequest) -> Profile:
    """The session's benchmark profile."""
    return profile_of(request.config)


@pytest.fixture(scope="session")
def hpml_bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchSession]:
    """Per-session benchmark state: profile, same-run baselines, real-format data, caches."""
    from hpml.data import dataset_info, list_datasets

    profile = profile_of(request.config)
    value = request.config.getoption("--data-dir", None)
    data_dir = Path(value).expanduser() if value else None
    batch = max(profile.batch_size(dataset_info(name)) for name in list_datasets())
    # enough train samples for one measured call of any phase that reads real files
    samples = max(profile.load_batches, profile.e2e_batches * profile.accum_steps) * batch
    samples = max(samples, profile.preprocess_samples)
    real = RealData(data_dir, tmp_path_factory.mktemp("hpml-real-format"), profile, samples)
    session = BenchSession(profile, real, request.config.stash[SLOWDOWN_KEY], request.config.stash[PRECISION_KEY],
                           request.config.stash.get(SELECTED_KEY, None))
    # Held until the last row has run; the PM QoS request covers the fresh and DDP processes too.
    with idle_cpus(request.config.stash.get(IDLE_POLICY_KEY, DEFAULT_POLICY)) as idle:
        request.config.stash[IDLE_KEY] = idle
        yield session
        session.drop_baseline()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from hpml.machine import machine_info as hpml_machine_info

    info = hpml_machine_info()
    if PROFILE_KEY in config.stash:
        info["profile"] = config.stash[PROFILE_KEY].name
        info["planted_slowdown"] = config.stash[SLOWDOWN_KEY]
    if IDLE_KEY in config.stash:
        info["cpu_idle"] = config.stash[IDLE_KEY].info()
    machine_info["hpml"] = info


def _measured_rows(config: pytest.Config) -> list[Any]:
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or bs.disabled:
        return []
    return [b for b in bs.benchmarks if b and not b.has_error and b.stats is not None]


def write_run_summary(config: pytest.Config, floors: dict[str, Any] | None = None,
                      unsaved: Unsaved | None = None) -> Path | None:
    """The session's run summary, or None when nothing was measured or it could not be written."""
    from hpml.results.summary import build_summary, summary_path, write_summary

    bs = getattr(config, "_benchmarksession", None)
    rows = _measured_rows(config)
    if not rows:
        return None
    machine_info = bs.get_machine_info()
    commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    profile = config.stash[PROFILE_KEY].name if PROFILE_KEY in config.stash else None
    summary = build_summary([b.as_dict(include_data=True) for b in rows], machine_info, commit_info, profile,
                            noise_floor=floors)
    path = summary_path(Path(getattr(bs.storage, "path", ".benchmarks")), summary)
    if unsaved is None:
        return write_summary(path, summary)
    unsaved.guard(f"the run summary {path}", json.dumps(summary, indent=2).encode(), lambda: write_summary(path, summary))
    return path if path.is_file() else None


def _between_run_calibration(config: pytest.Config) -> dict[str, Any] | None:
    """This machine's between-run spreads (``hpml calibrate``), or None (rows stay within-run)."""
    bs = getattr(config, "_benchmarksession", None)
    try:
        return between_run.load(bs.get_machine_info() if bs is not None else None)
    except HpmlError as err:
        config.get_terminal_writer().line(f"hpml: {err}; intervals stay within-run")
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    """Before the first row, check the storage; after the last, decide significance before
    pytest-benchmark saves, so saved rows, summary and screen agree."""
    config = session.config
    bs = compat.safe_saving(config, config.stash.setdefault(UNSAVED_KEY, Unsaved()))
    if bs is not None and not bs.disabled:
        try:
            check_storage(bs.storage, bs.machine_id, bool(bs.save or bs.autosave), bs.json)
        except HpmlError as err:
            pytest.exit(f"hpml: {err}", returncode=USAGE_EXIT)
    yield
    infos = [b.extra_info for b in _measured_rows(config)]
    if infos:
        between_run.apply(infos, _between_run_calibration(config))
    floors = config.stash[FLOORS_KEY] = screen.finalize(infos)
    if infos:
        idle = config.stash[IDLE_KEY].info() if IDLE_KEY in config.stash else None
        config.stash[SCREEN_KEY] = screen.render(infos, floors, screen.busy_rows(infos), idle) + _moved(config)


def _moved(config: pytest.Config) -> list[str]:
    """``--benchmark-compare``: the rows that moved since the compared run (:mod:`hpml.bench.moved`)."""
    bs = getattr(config, "_benchmarksession", None)
    mapping = getattr(bs, "compared_mapping", None)
    if not mapping:
        return []
    from hpml.bench import moved

    rows = [b.as_dict(include_data=False) for b in _measured_rows(config)]
    profiles = {config.stash[PROFILE_KEY].name} if PROFILE_KEY in config.stash else set()
    sigmas = moved.stored_sigmas(Path(getattr(bs.storage, "path", ".benchmarks")), bs.get_machine_info(), profiles)
    return [line for path, compared in mapping.items() for line in moved.moved_block(rows, compared, Path(path).stem,
                                                                                      sigmas)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    unsaved = config.stash.setdefault(UNSAVED_KEY, Unsaved())
    path = write_run_summary(config, config.stash.get(FLOORS_KEY, None), unsaved)
    if path is not None:
        config.stash[SUMMARY_KEY] = path
    if unsaved.lines and session.exitstatus in (0, pytest.ExitCode.OK):
        # the rows ran and are on screen; what could not be saved fails the session
        session.exitstatus = 130 if unsaved.interrupted else 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if SCREEN_KEY in config.stash:
        terminalreporter.write_sep("=", "hpml speedups")
        for line in config.stash[SCREEN_KEY]:
            terminalreporter.write_line(line)
    if SUMMARY_KEY in config.stash:
        terminalreporter.write_line(f"hpml: run summary written to {config.stash[SUMMARY_KEY]}")
    for line in config.stash.get(UNSAVED_KEY, Unsaved()).lines:
        terminalreporter.write_line(f"hpml: {line}")
