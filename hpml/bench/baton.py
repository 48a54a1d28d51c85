"""The baton: two benchmark sessions run at once, but only one of them at any time.

``hpml gate --base`` starts the base and the current pytest session *concurrently*
and lets exactly one of them run at a time, handing over after every timed call in
ABBA order of turns (A B B A A B B A ...).  The k-th timed call of the base and the
k-th of the current session therefore run next to each other in time, on the same
machine state, and the gate can compare them pair by pair (:func:`hpml.gate.checks.
compare_paired`) instead of pooling rounds of sessions minutes apart.

Protocol (two ``os.pipe`` pairs per child, their ends passed with ``pass_fds`` and named
in ``HPML_BATON="rfd,wfd"``):

* the child blocks on a "go" byte *before* importing anything heavy (the wrapper of
  :func:`child_command` loads this file, stdlib only, under :data:`CHILD_MODULE` and
  waits before it imports pytest), so the imports, collection, model building and
  warm-up all belong to the child's first turn;
* after each timed call the child writes a "done" byte and blocks on "go" again
  (:func:`handover`: hpml's harness calls it after each measured call, outside the
  timed region; :func:`timer` does it for plain pytest-benchmark rounds);
* EOF on "go" means "run free": the conductor closes a child's "go" pipe when the other
  child has exited, so the survivor keeps the baton for good (it still writes "done"
  after each call, without waiting, so that its calls are counted).  A child whose parent died
  sees EOF too and runs free: a child never hangs on the baton.

:func:`conduct` is the parent's side.  It never hangs either: a child that dies, or
exits without ever handing back (a base revision whose code predates the baton), ends
its turn by EOF; a run that goes past ``timeout`` seconds is killed.  The report says
whether the alternation held (both children handed over equally often, at least once);
when it did not, the gate falls back to the unpaired session test and says so.

This module imports nothing but the standard library: it is loaded into sessions of
*any* revision, before pytest, without importing the ``hpml`` package of that revision.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Sequence

#: Environment variable naming the child's two pipe ends: "read_fd,write_fd".
ENV = "HPML_BATON"
#: The gate's pid, set on both sessions of a pair (read by hpml.bench.busy).
ROOT_ENV = "HPML_BATON_ROOT"
#: Module name this file is registered under in a baton child (see :func:`child_command`).
CHILD_MODULE = "hpml_gate_baton"
GO, DONE = b"g", b"d"

# --- the child's side ---------------------------------------------------------------------------


class Client:
    """A session's end of the baton (a no-op when the session runs without one)."""

    def __init__(self, rfd: int | None = None, wfd: int | None = None) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.free = rfd is None or wfd is None  # no baton, or released for good
        self.handovers = 0

    @classmethod
    def from_env(cls) -> "Client":
        # Consumed here: a process this session starts (a fresh-process row, a DataLoader
        # worker) must not take the variable for its own, its fd numbers mean other files there.
        raw = os.environ.pop(ENV, "")
        try:
            rfd, wfd = (int(part) for part in raw.split(","))
            os.set_inheritable(rfd, False)
            os.set_inheritable(wfd, False)
        except (ValueError, OSError):
            return cls()  # unset or not ours: run without a baton
        return cls(rfd, wfd)

    def wait(self) -> None:
        """Block until the conductor says go; EOF (released, or the conductor died): run free."""
        if self.free:
            return
        try:
            got = os.read(self.rfd, 1)
        except OSError:
            got = b""
        if not got:
            self.free = True

    def handover(self) -> None:
        """One timed call is over: let the other session run, and wait for the baton back.

        A released child still reports its calls (without waiting), so the conductor can
        tell whether both sessions made the same number of them."""
        if self.wfd is None:
            return
        try:
            os.write(self.wfd, DONE)
        except OSError:  # the conductor is gone
            self.wfd, self.free = None, True
            return
        self.handovers += 1
        self.wait()


_CLIENT: Client | None = None


def client() -> Client:
    """This process's client.  In a baton child the wrapper registered this file as
    :data:`CHILD_MODULE` before anything else ran; ``hpml.bench.baton`` imported later (by
    the harness) then delegates to that one, so there is one client per process."""
    global _CLIENT
    registered = sys.modules.get(CHILD_MODULE)
    if registered is not None and registered is not sys.modules.get(__name__):
        return registered.client()
    if _CLIENT is None:
        _CLIENT = Client.from_env()
    return _CLIENT


def handover() -> None:
    """Hand the baton over after a timed call (a no-op outside a gate session).  Call it
    *after* the call's end timestamp: the wait must never land in a timed region."""
    client().handover()


def timer() -> float:
    """``--benchmark-timer`` for plain pytest-benchmark sessions: ``time.perf_counter``,
    handing the baton over right after each round's *end* timestamp.

    pytest-benchmark's runner (``BenchmarkFixture._make_runner``, 5.x) reads the timer
    twice per round, ``start = timer()`` and ``end = timer()``; the end reading is the one
    whose caller already holds ``start``.  Readings from anywhere else (the timer's
    precision probe) never hand over.  Pinned by tests/gate/test_baton.py against the
    installed version.  ``benchmark.pedantic`` makes the same runs on both sides; plain
    ``benchmark(f)`` calibrates by time, so the two sides may make different numbers of
    runs, and the gate then falls back to its unpaired test.
    """
    now = time.perf_counter()
    caller = sys._getframe(1)
    if caller.f_code.co_name == "runner" and "start" in caller.f_locals:
        handover()
    return now


#: The wrapper run as ``python -c WRAPPER BATON_FILE MODULE ARGS...``: loads the baton (stdlib
#: only), waits for the first turn, then runs MODULE as ``python -m MODULE ARGS...`` would.
WRAPPER = (
    "import importlib.util, runpy, sys\n"
    "spec = importlib.util.spec_from_file_location(%r, sys.argv[1])\n"
    "baton = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = baton\n"
    "spec.loader.exec_module(baton)\n"
    "baton.client().wait()\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
) % CHILD_MODULE


def child_command(module: str, args: Sequence[str], python: str = sys.executable) -> list[str]:
    """``python -m module args...`` that first waits for its turn on the baton."""
    return [python, "-c", WRAPPER, str(Path(__file__).resolve()), module, *args]


# --- the parent's side ---------------------------------------------------------------------------


class BatonTimeout(Exception):
    """The children ran past the conductor's timeout; both were killed."""


@dataclass
class Child:
    """A started child and the parent's ends of its two pipes."""

    name: str
    proc: subprocess.Popen
    go: int | None  # parent writes "go" here
    done: int | None  # parent reads "done" here
    handovers: int = 0


@dataclass
class Report:
    """What :func:`conduct` saw."""

    names: tuple[str, str]
    # who held the baton, turn by turn; in the last turn one of them ran to its end (then the other ran free)
    turns: list[str] = field(default_factory=list)
    handovers: dict[str, int] = field(default_factory=dict)
    returncodes: dict[str, int] = field(default_factory=dict)

    @property
    def problem(self) -> str | None:
        """None when the two sessions alternated call by call; else why they did not."""
        a, b = (self.handovers.get(n, 0) for n in self.names)
        if a == 0 or b == 0:
            silent = [n for n in self.names if self.handovers.get(n, 0) == 0]
            return (f"the {' and '.join(silent)} session never handed the baton over (code that predates "
                    "the baton, or no timed call)")
        if a != b:
            return f"the sessions made different numbers of timed calls ({self.names[0]} {a}, {self.names[1]} {b})"
        return None


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGKILL when the gate dies, so a gate
    killed with SIGKILL (no ``finally`` runs) leaves no session re-parented to PID 1."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, 9)  # 9: SIGKILL
    except (OSError, AttributeError):
        pass  # not Linux: the gate's own cleanup still stops the sessions it outlives


def spawn(name: str, cmd: Sequence[str], *, cwd: Path, env: dict[str, str], output: IO[bytes]) -> Child:
    """Start ``cmd`` (see :func:`child_command`) blocked on its first turn."""
    go_r, go_w = os.pipe()  # os.pipe ends are not inheritable: only pass_fds reach the child
    done_r, done_w = os.pipe()
    try:
        # ROOT_ENV: the two sessions take turns, so each one's CPU is the pair's own work;
        # hpml.bench.busy counts this process's whole tree as "own", not as another's load.
        proc = subprocess.Popen(list(cmd), cwd=cwd, env={**env, ENV: f"{go_r},{done_w}", ROOT_ENV: str(os.getpid())},
                                pass_fds=(go_r, done_w),
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    except OSError:
        for fd in (go_r, go_w, done_r, done_w):
            os.close(fd)
        raise
    os.close(go_r)  # the child's ends: closed here, so the child's exit reads as EOF
    os.close(done_w)
    return Child(name, proc, go_w, done_r)


def _close_go(child: Child) -> None:
    if child.go is not None:
        os.close(child.go)
        child.go = None


def stop(children: Sequence[Child]) -> None:
    """Kill whatever still runs and close the parent's pipe ends (idempotent)."""
    for c in children:  # killed before any "go" closes: a released child must not run on
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
    for c in children:
        _close_go(c)
        if c.done is not None:
            os.close(c.done)
            c.done = None


def conduct(a: Child, b: Child, *, first: int = 0, timeout: float | None = None) -> Report:
    """Give ``a`` and ``b`` the baton in turns, ABBA from ``first`` (0: ``a``), until both exit.

    Returns when both processes have ended; their exit codes are in the report.  Raises
    :class:`BatonTimeout` (both killed) when that takes longer than ``timeout`` seconds.
    """
    children = (a, b)
    report = Report((a.name, b.name))
    deadline = None if timeout is None else time.monotonic() + timeout
    turn, holder = 0, None  # holder: index of the child waited for; None once nobody is conducted
    try:
        while any(c.done is not None for c in children):
            alive = [i for i, c in enumerate(children) if c.done is not None]
            if holder is None and len(alive) == 2 and all(c.go is not None for c in children):
                holder = first if turn % 4 in (0, 3) else 1 - first  # A B B A ...
                try:
                    os.write(children[holder].go, GO)
                    report.turns.append(children[holder].name)
                except OSError:  # it died before its turn: its EOF follows
                    _close_go(children[holder])
                    holder = None
            if len(alive) < 2 or any(c.go is None for c in children):
                for c in children:  # one has ended (or cannot be driven): the other runs free
                    _close_go(c)
                holder = None
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([children[i].done for i in alive], [], [], wait)
            if not ready:
                raise BatonTimeout(f"the sessions ran past {timeout:g} s")
            for i in alive:
                c = children[i]
                if c.done not in ready:
                    continue
                data = os.read(c.done, 4096)
                if not data:  # the child exited (or closed its end)
                    os.close(c.done)
                    c.done = None
                    continue
                c.handovers += len(data)
                if i == holder:
                    turn, holder = turn + 1, None
        for c in children:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                c.proc.wait(wait)
            except subprocess.TimeoutExpired:
                raise BatonTimeout(f"the {c.name} session ran past {timeout:g} s") from None
    finally:
        stop(children)
    report.handovers = {c.name: c.handovers for c in children}
    report.returncodes = {c.name: c.proc.returncode for c in children}
    return report
