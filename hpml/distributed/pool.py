"""Ranks started once and kept up between calls, so a benchmark round pays no spawn or group join:
``pool.call(fn, *args)`` runs ``fn(env, store, *args)`` on every rank (~0.1-1 ms overhead) and returns
their results in rank order; a failed rank makes it raise its one-line error."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import torch.multiprocessing as mp

from hpml.distributed.env import DistEnv
from hpml.distributed.ranks import POLL_S, spawn
from hpml.errors import RunFailed


def _serve(env: DistEnv, commands: list, replies: Any) -> None:
    store: dict[str, Any] = {}
    while True:
        message = commands[env.rank].get()
        if message is None:
            return
        fn, args = message
        replies.put((env.rank, fn(env, store, *args)))


class RankPool:
    """``nproc`` local ranks in one process group, waiting for :meth:`call`."""

    def __init__(self, nproc: int, *, device: str = "cpu", timeout: float | None = None,
                 threads: int | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.nproc = nproc
        self._commands = [ctx.SimpleQueue() for _ in range(nproc)]
        self._replies = ctx.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(device, timeout, threads), name="hpml-rank-pool", daemon=True
        )
        self._thread.start()

    def _run(self, device: str, timeout: float | None, threads: int | None) -> None:
        try:
            spawn(_serve, self.nproc, (self._commands, self._replies), device=device, timeout=timeout,
                  threads=threads)
        except BaseException as exc:  # noqa: BLE001 -- re-raised by the waiting call()
            self._error = exc

    def call(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Run ``fn(env, store, *args)`` on every rank; their results in rank order."""
        self._check()
        for commands in self._commands:
            commands.put((fn, args))
        results: dict[int, Any] = {}
        while len(results) < self.nproc:
            try:
                rank, result = self._replies.get(timeout=POLL_S)
            except queue.Empty:
                self._check()
                continue
            results[rank] = result
        return [results[r] for r in range(self.nproc)]

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if not self._thread.is_alive():
            raise RunFailed("the rank pool has stopped")

    def close(self) -> None:
        """Let the ranks return and leave their group; stops them if they do not."""
        if self._thread.is_alive():
            for commands in self._commands:
                commands.put(None)
            self._thread.join()

    def __enter__(self) -> "RankPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
