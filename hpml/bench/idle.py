"""Idle CPUs kept awake while rows are measured: a PM QoS latency request of 0 µs (``/dev/cpu_dma_latency``),
where permitted; a cross-CPU wake-up took 79 µs without it, 4.7 µs with it (docs/studies/cpu-wakeup.md).
The run records what held (``machine_info["hpml"]["cpu_idle"]``)."""

from __future__ import annotations

import os
import statistics
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hpml.errors import HpmlError

#: The PM QoS device: the strictest request held open by any process applies to every CPU.
QOS_PATH = "/dev/cpu_dma_latency"
#: Environment variable that picks the policy when ``--hpml-idle`` is not given.
IDLE_ENV = "HPML_BENCH_IDLE"
POLICIES = {
    "awake": "hold a PM QoS CPU latency request of 0 us while measuring: idle CPUs poll instead of sleeping",
    "os": "leave idle CPUs as the OS does (they may sleep; waking one costs what the machine makes it cost)",
}
DEFAULT_POLICY = "awake"

# A child that echoes each byte it reads: the far end of the wake-up probe.
_ECHO = "import os\nwhile os.read(0, 1) == b'x':\n    os.write(1, b'x')\n"


def policy_from(value: str | None) -> str:
    """``value`` (an option's), else ``$HPML_BENCH_IDLE``, else ``awake``; unknown: HpmlError."""
    name = value if value is not None else os.environ.get(IDLE_ENV) or DEFAULT_POLICY
    if name not in POLICIES:
        raise HpmlError(f"unknown idle policy {name!r}: pick one of {', '.join(POLICIES)}")
    return name


@dataclass(frozen=True)
class IdleState:
    """What a session measured under: the policy asked for, whether the request held, why not."""

    policy: str
    held: bool
    detail: str  # what held, or why nothing did
    wakeup_us: float | None = None  # cross-CPU round trip measured under it (None: fewer than 2 CPUs)

    def info(self) -> dict[str, Any]:
        return {"policy": self.policy, "held": self.held, "detail": self.detail,
                "cross_cpu_roundtrip_us": None if self.wakeup_us is None else round(self.wakeup_us, 1)}


def describe(info: dict[str, Any] | None) -> str | None:
    """One line for the screen from a run's recorded ``cpu_idle``; None when it recorded none."""
    if not isinstance(info, dict) or "policy" not in info:
        return None
    rt = info.get("cross_cpu_roundtrip_us")
    probe = f"; cross-CPU wake-up round trip {rt:.0f} us" if isinstance(rt, (int, float)) else ""
    if info.get("held"):
        return f"idle CPUs: kept awake (PM QoS 0 us request held){probe}"
    if info.get("policy") == "os":
        return f"idle CPUs: left to the OS (--hpml-idle os){probe}"
    return (f"idle CPUs: NOT kept awake ({info.get('detail', 'request not held')}){probe}: rows that hand work "
            "between processes (loading with workers) move with where the scheduler puts them")


@contextmanager
def idle_cpus(policy: str, path: str = QOS_PATH, probe: bool = True) -> Iterator[IdleState]:
    """Hold the PM QoS request for the ``with`` block when ``policy`` is ``awake``; yield what held."""
    fd = None
    if policy == "os":
        detail = "not asked (--hpml-idle os)"
    else:
        try:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, struct.pack("i", 0))
            detail = f"0 us written to {path} and held open"
        except OSError as err:
            if fd is not None:
                os.close(fd)
                fd = None
            reason = "needs root" if err.errno in (1, 13) else err.strerror or str(err)
            detail = f"cannot hold {path}: {reason}"
    try:
        yield IdleState(policy, fd is not None, detail, cross_cpu_roundtrip_us() if probe else None)
    finally:
        if fd is not None:
            os.close(fd)  # the kernel drops the request with the last open file


def cross_cpu_roundtrip_us(seconds: float = 0.1) -> float | None:
    """Median round trip (µs) of a byte echoed by a child pinned to another CPU; None without two CPUs."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    mine = os.sched_getaffinity(0)
    cpus = sorted(mine)
    if len(cpus) < 2:
        return None
    child = subprocess.Popen([sys.executable, "-c", _ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    send, receive = child.stdin.fileno(), child.stdout.fileno()
    times: list[float] = []
    try:
        os.sched_setaffinity(child.pid, {cpus[1]})
        os.sched_setaffinity(0, {cpus[0]})
        os.write(send, b"x")  # the first answer waits for the child's start-up
        if os.read(receive, 1) != b"x":
            return None
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            os.write(send, b"x")
            if os.read(receive, 1) != b"x":
                return None
            times.append(time.perf_counter() - start)
    except OSError:
        return None
    finally:
        os.sched_setaffinity(0, mine)
        child.stdin.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()
    return statistics.median(times) * 1e6 if times else None
