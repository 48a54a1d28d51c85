"""The :class:`Tracker` protocol: ``start()``, then ``stop()`` returning ``{metric name: value}`` with
names declared in :data:`hpml.results.metric_registry.METRICS`; and :class:`Tracking`, its ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tracker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> dict[str, Any]: ...


class Tracking:
    """``with`` for a tracker: ``start()`` on entry, ``stop()`` on exit, or :meth:`abort` when the block
    raised (a tracker never leaves a sampling thread or an open region behind)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> dict[str, Any]:
        raise NotImplementedError

    def abort(self) -> None:
        self.stop()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.abort()
