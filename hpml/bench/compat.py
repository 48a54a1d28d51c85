"""The one place hpml uses pytest-benchmark's private API (tested in tests/bench/test_compat.py).

The harness times each row's calls itself (interleaved with its baseline's, see
:mod:`hpml.bench.paired`) and then hands the row's own call times to pytest-benchmark,
so its native statistics, tables, ``--benchmark-save`` JSON and ``--benchmark-compare``
keep working on them.  pytest-benchmark has no public way to record times measured
elsewhere; ``BenchmarkFixture._make_stats`` (creates and registers the row's stats)
and ``Metadata.update(seconds)`` (adds one round) are what ``pedantic`` itself uses.
"""

from __future__ import annotations

from typing import Any, Sequence


def record_rounds(benchmark: Any, seconds: Sequence[float]) -> None:
    """Record ``seconds`` (one per round, 1 iteration each) as ``benchmark``'s own rounds."""
    if not seconds:
        raise ValueError("no rounds to record")
    if getattr(benchmark, "_mode", None):
        raise RuntimeError(f"benchmark fixture already used ({benchmark._mode})")
    benchmark._mode = "hpml.bench.compat.record_rounds(...)"  # as pedantic marks its use
    stats = benchmark._make_stats(1)
    for s in seconds:
        stats.update(s)


def mark_unmeasured(benchmark: Any) -> None:
    """Under ``--benchmark-disable`` a row runs its warm-up only: mark the fixture used, as
    ``pedantic`` does in that mode, so pytest-benchmark does not warn that it was not."""
    if not getattr(benchmark, "_mode", None):
        benchmark._mode = "hpml (--benchmark-disable: warm-up only)"


def safe_saving(config: Any, unsaved: Any) -> Any | None:
    """The config's pytest-benchmark session (None without one), its file storage numbering
    runs exclusively (:class:`hpml.bench.storage.ExclusiveFileStorage`) and both of its
    end-of-session saves (the run file, ``--benchmark-json``) kept by ``unsaved``
    (:class:`hpml.bench.storage.Unsaved`) when they fail, instead of an INTERNALERROR.

    Private API: ``config._benchmarksession``, its ``storage``, ``save_json`` and ``json``."""
    from pytest_benchmark.storage.file import FileStorage

    from hpml.bench.storage import ExclusiveFileStorage, dumps

    bs = getattr(config, "_benchmarksession", None)
    if bs is None or getattr(bs, "_hpml_safe", False):
        return bs
    storage = bs.storage
    if type(storage) is FileStorage:
        storage.__class__ = ExclusiveFileStorage  # the same object, its save() replaced
    save_run, save_json = storage.save, bs.save_json
    storage.save = lambda output_json, save: unsaved.guard(
        f"the run into {storage}", dumps(output_json), lambda: save_run(output_json, save))
    bs.save_json = lambda output_json: unsaved.guard(
        f"--benchmark-json {bs.json}", dumps(output_json), lambda: save_json(output_json))
    bs._hpml_safe = True
    return bs
