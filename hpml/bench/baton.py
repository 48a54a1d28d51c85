"""The baton: the two sessions of ``hpml gate --base`` run at once, one at a time, handing over after
each timed call in ABBA order over two pipes (``HPML_BATON``); EOF on "go" means run free, so a child
never hangs.  Standard library only: it is loaded into any revision's session before its ``hpml``."""

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


class Client:
    """A session's end of the baton (a no-op when the session runs without one)."""

    def __init__(self, rfd: int | None = None, wfd: int | None = None) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.free = rfd is None or wfd is None  # no baton, or released for good
        self.handovers = 0

    @classmethod
    def from_env(cls) -> "Client":
        # consumed: in a process this session starts, those fd numbers are other files
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
        """One timed call is over: let the other session run, and wait for the baton back
        (a released child still reports its calls, so the conductor can count them)."""
        if self.wfd is None:
            return
        try:
            os.write(self.wfd, DONE)
        except OSError:
            self.wfd, self.free = None, True
            return
        self.handovers += 1
        self.wait()


_CLIENT: Client | None = None


def client() -> Client:
    """This process's client: the one the child wrapper registered as :data:`CHILD_MODULE`, if any."""
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
    """``--benchmark-timer`` for plain pytest-benchmark rounds: ``time.perf_counter``, handing over
    after each round's end reading (the one whose caller holds ``start``; tests/gate/test_baton.py)."""
    now = time.perf_counter()
    caller = sys._getframe(1)
    if caller.f_code.co_name == "runner" and "start" in caller.f_locals:
        handover()
    return now


#: ``python -c WRAPPER BATON_FILE MODULE ARGS...``: load the baton, wait for the first turn, run MODULE.
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


class BatonTimeout(Exception):
    """The children ran past the conductor's timeout; both were killed."""


@dataclass
class Child:
    """A started child and the parent's ends of its two pipes."""

    name: str
    proc: subprocess.Popen
    go: int | None
    done: int | None
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
    """In the child, before exec: SIGKILL when the gate dies, so no session outlives a killed gate."""
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
        # the pair's CPU is its own work: hpml.bench.busy counts the gate's whole tree as "own"
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
    """Give ``a`` and ``b`` the baton in turns, ABBA from ``first``, until both exit; past ``timeout``
    s both are killed and :class:`BatonTimeout` is raised."""
    children = (a, b)
    report = Report((a.name, b.name))
    deadline = None if timeout is None else time.monotonic() + timeout
    turn, holder = 0, None  # holder: index of the child waited for; None once nobody is conducted
    try:
        while any(c.done is not None for c in children):
            alive = [i for i, c in enumerate(children) if c.done is not None]
            if holder is None and len(alive) == 2 and all(c.go is not None for c in children):
                holder = first if turn % 4 in (0, 3) else 1 - first
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
