"""Sides of a pair in a fresh process, for optimizations that change the process for good
(``host_allocator``): forked from a forkserver that imported torch and hpml but built nothing; each
"call" answers one timed call's seconds.  The baseline's process is shared by its group."""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import shutil
from typing import TYPE_CHECKING, Any, Callable

from hpml.bench.sides import NotApplicable, Side
from hpml.errors import HpmlError

if TYPE_CHECKING:
    from hpml.bench.matrix import Case
    from hpml.bench.session import BenchSession

#: s a fresh side may take to build its workload (ImageNet JPEGs, a ResNet-50 on 2 cores)
BUILD_TIMEOUT_S = 600.0
#: s one command (a call, the warm-up calls) may take before the side is declared hung
CALL_TIMEOUT_S = 600.0

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        # Imported once in the server; every side is forked from it with them loaded.
        ctx.set_forkserver_preload(["torch", "hpml.bench.workloads"])
        _CONTEXT = ctx
    return _CONTEXT


def _serve(conn: Any, case: "Case", build: Callable[..., Any], session_type: type, profile: Any, real_data: Any,
           slowdown: float, session_temp: str) -> None:
    """The fresh process: build the side, report what it is, then answer commands.

    ``session_temp``: the session's pymp-* folder, which holds the forkserver's socket."""
    import torch

    from hpml.errors import one_line_message
    from hpml.train.build import seed_everything

    try:
        session = session_type(profile, real_data, slowdown)  # the parent's class: no import cycle
        seed_everything(profile.seed)
        side = Side(build(case, session), case.device, slowdown, case.optimization)
    except NotApplicable as err:
        conn.send(("not_applicable", str(err)))
        return
    except torch.OutOfMemoryError as err:
        conn.send(("oom", one_line_message(err)))
        return
    except Exception as err:
        conn.send(("error", f"{type(err).__name__}: {one_line_message(err)}"))
        return
    conn.send(("ok", side.describe()))
    while True:
        try:
            command, arg = conn.recv()
        except EOFError:
            # The session went away: killed, it removed no pymp-* folder (pytest has no
            # SIGTERM handler), so its sides remove its folder, as ranks do their launcher's.
            shutil.rmtree(session_temp, ignore_errors=True)
            return
        if command == "call":
            conn.send(("ok", side()))
        elif command == "warm":
            conn.send(("ok", side.warm(arg)))
        elif command == "phases":
            conn.send(("ok", side.phases(arg)))
        elif command == "costs":
            conn.send(("ok", side.call_costs()))
        elif command == "reset_costs":
            side.reset_costs()
            conn.send(("ok", None))
        else:
            return


class FreshSide:
    """One side of a pair in its own fresh process (same interface as ``sides.Side``)."""

    def __init__(self, case: "Case", session: "BenchSession", build: Callable[..., Any]) -> None:
        self.case = case
        if case.source == "real" or case.phase in ("load", "preprocess", "end_to_end"):
            session.real_data.root(case.dataset)  # write the real-format files here, once, not per process
        ctx = _context()
        self._conn, child = ctx.Pipe()
        session_temp = multiprocessing.util.get_temp_dir()  # made now if not yet; the forkserver's socket goes there
        args = (child, case, build, type(session), session.profile, session.real_data, session.slowdown, session_temp)
        self._proc = ctx.Process(target=_serve, args=args, name=f"hpml-fresh-{case.id}")
        self._proc.start()
        child.close()
        try:
            status, payload = self._receive(BUILD_TIMEOUT_S)
        except BaseException:  # interrupted (Ctrl-C) or failed: the process must not outlive the row
            self.close()
            raise
        if status != "ok":
            self.close()
            if status == "not_applicable":
                raise NotApplicable(payload)
            raise HpmlError(f"fresh process for {case.id}: {payload}")
        self._description = payload

    def _receive(self, timeout: float) -> tuple[str, Any]:
        if not self._conn.poll(timeout):
            self.close()
            raise HpmlError(f"fresh process for {self.case.id} did not answer within {timeout:.0f} s")
        try:
            return self._conn.recv()
        except EOFError:
            self._proc.join(5)
            raise HpmlError(f"fresh process for {self.case.id} died (exit code {self._proc.exitcode})") from None

    def _ask(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        status, payload = self._receive(CALL_TIMEOUT_S)
        if status != "ok":
            raise HpmlError(f"fresh process for {self.case.id}: {payload}")
        return payload

    @property
    def samples_per_round(self) -> int:
        return self._description["samples_per_round"]

    def __call__(self) -> float:
        return self._ask("call")

    def warm(self, calls: int) -> dict[str, Any]:
        return self._ask("warm", calls)

    def describe(self) -> dict[str, Any]:
        return self._description

    def phases(self, measured: int) -> dict[str, Any] | None:
        return self._ask("phases", measured)

    def reset_costs(self) -> None:
        self._ask("reset_costs")

    def call_costs(self) -> dict[str, Any]:
        return self._ask("costs")

    def close(self) -> None:
        if self._conn.closed:
            return
        if self._proc.is_alive():
            try:
                self._conn.send(("close", None))
            except OSError:
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        self._conn.close()
