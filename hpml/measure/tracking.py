"""The :class:`Tracker` protocol every measurement obeys, and its one ``with`` form.

A tracker measures a region: ``start()`` before it, ``stop()`` after it, which returns
``{metric name: value}`` with every name declared in :data:`hpml.results.metric_registry.METRICS`
(so the JSON, the rank reduction, the report and the gate know the value without
being told).  ``with tracker:`` is :class:`Tracking`'s, the same for every tracker.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tracker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> dict[str, Any]: ...


class Tracking:
    """``with`` for a tracker: ``start()`` on entry, ``stop()`` on exit (also when the block
    raises: a tracker never leaves a sampling thread or an open region behind).  A tracker
    whose stop checks the region's result (the profiler's trace) overrides :meth:`abort`,
    which runs instead of ``stop()`` when the block raised."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> dict[str, Any]:
        raise NotImplementedError

    def abort(self) -> None:
        self.stop()

    def __enter__(self):  # -> Self
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.abort()
