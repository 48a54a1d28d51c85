"""The one place hpml uses pytest-benchmark's private API (tests/bench/test_compat.py): rows are timed
here, then their call times are handed over with what ``pedantic`` uses (``_make_stats``, ``update``)."""

from __future__ import annotations

from typing import Any, Sequence


def record_rounds(benchmark: Any, seconds: Sequence[float]) -> None:
    """Record ``seconds`` (one per round, 1 iteration each) as ``benchmark``'s own rounds."""
    if not seconds:
        raise ValueError("no rounds to record")
    if getattr(benchmark, "_mode", None):
        raise RuntimeError(f"benchmark fixture already used ({benchmark._mode})")
    benchmark._mode = "hpml.bench.compat.record_rounds(...)"
    stats = benchmark._make_stats(1)
    for s in seconds:
        stats.update(s)


def mark_unmeasured(benchmark: Any) -> None:
    """Under ``--benchmark-disable`` a row runs its warm-up only: mark the fixture used, as
    ``pedantic`` does in that mode, so pytest-benchmark does not warn that it was not."""
    if not getattr(benchmark, "_mode", None):
        benchmark._mode = "hpml (--benchmark-disable: warm-up only)"


def safe_saving(config: Any, unsaved: Any) -> Any | None:
    """The config's pytest-benchmark session, its storage numbering runs exclusively and failed saves
    kept by ``unsaved`` (:mod:`hpml.bench.storage`).  Private: ``config._benchmarksession``, ``storage``,
    ``save_json``, ``json``."""
    from pytest_benchmark.storage.file import FileStorage

    from hpml.bench.storage import ExclusiveFileStorage, dumps

    bs = getattr(config, "_benchmarksession", None)
    if bs is None or getattr(bs, "_hpml_safe", False):
        return bs
    storage = bs.storage
    if type(storage) is FileStorage:
        storage.__class__ = ExclusiveFileStorage
    save_run, save_json = storage.save, bs.save_json
    storage.save = lambda output_json, save: unsaved.guard(
        f"the run into {storage}", dumps(output_json), lambda: save_run(output_json, save))
    bs.save_json = lambda output_json: unsaved.guard(
        f"--benchmark-json {bs.json}", dumps(output_json), lambda: save_json(output_json))
    bs._hpml_safe = True
    return bs
