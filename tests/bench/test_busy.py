"""Busy-machine detection on a fake /proc, and the own process tree kept out of "others"."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpml.bench import busy
from hpml.bench.busy import RowMonitor, snapshot, verdict, window

HZ = 100  # jiffies per second in the fake /proc/stat (os.sysconf is patched to match)


class FakeProc:
    """A /proc with a cpu line we advance by hand, and a clock and own-CPU counter to match."""

    def __init__(self, root: Path, cores: int = 2) -> None:
        self.root, self.cores = root, cores
        self.user = self.system = self.idle = self.steal = 0.0  # s, all cores
        self.own = 0.0  # s of CPU used by our own process tree
        self.now = 0.0
        self.load = 0.5
        self.write()

    def write(self) -> None:
        j = lambda s: int(round(s * HZ))  # noqa: E731
        cpu = f"cpu  {j(self.user)} 0 {j(self.system)} {j(self.idle)} 0 0 0 {j(self.steal)} 0 0"
        per_core = "\n".join(f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(self.cores))
        (self.root / "stat").write_text(f"{cpu}\n{per_core}\nintr 0\n")
        (self.root / "loadavg").write_text(f"{self.load:.2f} 0.40 0.30 1/100 1234\n")

    def run(self, seconds: float, own_cores: float, other_cores: float, steal_cores: float = 0.0) -> None:
        """``seconds`` of wall time with our tree and others using that many cores."""
        self.now += seconds
        self.own += own_cores * seconds
        self.user += (own_cores + other_cores) * seconds
        self.steal += steal_cores * seconds
        self.idle += max(0.0, self.cores - own_cores - other_cores - steal_cores) * seconds
        self.write()

    def snap(self):
        return snapshot(self.root, own=lambda: self.own, clock=lambda: self.now)


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProc:
    monkeypatch.setattr(busy.os, "sysconf", lambda name: HZ)
    return FakeProc(tmp_path)


def test_a_quiet_machine_is_not_busy_however_hard_we_work(proc: FakeProc):
    start = proc.snap()
    proc.run(10.0, own_cores=2.0, other_cores=0.0)  # our process and its workers on both cores
    w = window(start, proc.snap())
    assert w.others_cores == pytest.approx(0.0, abs=0.01) and not w.busy


def test_other_processes_on_the_cores_make_it_busy(proc: FakeProc):
    start = proc.snap()
    proc.load = 3.9
    proc.run(10.0, own_cores=0.3, other_cores=1.7)
    v = verdict(None, window(start, proc.snap()))
    assert v.busy
    assert v.reason == "other processes used 1.7 cores; load 3.9 on 2 cores (during the row)"
    assert "steal" not in v.reason
    assert v.evidence["during"]["others_cores"] == pytest.approx(1.7, abs=0.01)


def test_steal_makes_it_busy(proc: FakeProc):
    start = proc.snap()
    proc.run(10.0, own_cores=1.0, other_cores=0.0, steal_cores=0.4)
    w = window(start, proc.snap())
    assert w.steal == pytest.approx(0.2, abs=0.01) and w.busy and "steal 20%" in w.reason()
    # steal is no other process of this machine: it used to read "other processes used 0.4 cores"
    assert w.others_cores == pytest.approx(0.0, abs=0.01) and "other processes" not in w.reason()


def test_steal_below_the_threshold_with_no_other_process_is_quiet(proc: FakeProc):
    start = proc.snap()
    proc.run(10.0, own_cores=1.0, other_cores=0.0, steal_cores=0.06)  # 3 % steal
    w = window(start, proc.snap())
    assert not w.busy and w.others_cores == pytest.approx(0.0, abs=0.01)


def test_busy_before_the_row_counts_too(proc: FakeProc):
    mon = RowMonitor(proc.snap)
    proc.run(5.0, own_cores=1.0, other_cores=1.0)  # while the row was built
    mon.measuring()
    proc.run(5.0, own_cores=1.0, other_cores=0.0)
    v = mon.finish()
    assert v.busy and v.reason.endswith("(before the row)")
    assert set(v.evidence) == {"before", "during"}


def test_too_short_a_window_is_not_judged(proc: FakeProc):
    start = proc.snap()
    proc.run(0.05, own_cores=0.0, other_cores=2.0)
    assert not window(start, proc.snap()).busy


def test_without_proc_stat_nothing_is_flagged_and_the_evidence_says_so(tmp_path: Path):
    start = snapshot(tmp_path / "nothing", own=lambda: 0.0, clock=lambda: 0.0)
    end = snapshot(tmp_path / "nothing", own=lambda: 0.0, clock=lambda: 5.0)
    v = verdict(None, window(start, end))
    assert not v.busy and "not measured" in v.evidence["note"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_own_cpu_time_includes_live_children():
    """A child (a loader worker, a fresh process) is ours: its CPU time is not "others"."""
    burn = ("import time, sys\n"
            "while time.process_time() < 0.3: pass\n"
            "print('done', flush=True)\n"
            "time.sleep(60)\n")
    before = busy.own_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"  # burned 0.3 s of CPU and is still alive
        assert busy.own_cpu_seconds() - before >= 0.25  # 0.3 s, read in 10 ms jiffies
    finally:
        child.kill()
        child.wait()


def test_under_the_gates_baton_the_other_session_is_own_work_not_load():
    """hpml gate --base runs two sessions that take turns; each must count the other's
    CPU as the pair's own work (else every row of both reads "busy" and the gate exits 2)."""
    import os
    import subprocess
    import sys

    from hpml.bench.busy import BATON_ROOT_ENV
    from hpml.bench.baton import ROOT_ENV

    assert ROOT_ENV == BATON_ROOT_ENV  # the gate sets what busy.py reads
    # a "sibling session" of this process (the stand-in gate): 0.3 s of CPU, then reaped
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"],
                   check=True)
    probe = [sys.executable, "-c", "from hpml.bench.busy import own_cpu_seconds; print(own_cpu_seconds())"]
    env = {k: v for k, v in os.environ.items() if k != BATON_ROOT_ENV}
    alone = float(subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout)
    paired = float(subprocess.run(probe, env={**env, BATON_ROOT_ENV: str(os.getpid())}, capture_output=True,
                                  text=True, check=True).stdout)
    assert paired - alone >= 0.25  # the sibling's CPU counts as own under the baton
