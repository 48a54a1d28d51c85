"""Why loading rows disagreed between runs, and what keeping idle CPUs awake changes.  ``python measure.py OUT.json``

Two parts, in one process, on a quiet machine:

1. **The wake-up probe.**  One byte sent to a child process and echoed back, both pinned:
   on the same CPU, then on two different CPUs; with idle CPUs left to the OS, then with
   hpml's PM QoS request held (:func:`hpml.bench.idle.idle_cpus`).  ``--probes`` times
   0.1 s each; their medians (µs) are stored.
2. **The loading rows under each condition.**  The default run's ``load:cifar10:cpu``
   workloads, built as ``../loading-drift/measure.py`` builds them (smoke profile, CIFAR-10
   in the real on-disk format, hpml's own ``loading_workload``), timed in blocks of ABBA
   pairs (``--block`` s, the smoke row budget), each block reported as a row reports it
   (:func:`hpml.bench.paired.paired_speedup`).  The conditions take turns, block by block:

   * ``os``: idle CPUs left to the OS, processes wherever the scheduler puts them (how
     every stored run before this folder measured);
   * ``os-shared`` (workers only): the same, but the main process and its worker
     processes all pinned to the first CPU;
   * ``os-split`` (workers only): the main process pinned to the first CPU, the workers
     to the second;
   * ``awake``: the PM QoS request held, processes wherever the scheduler puts them (how
     rows measure by default now).

   Kinds: ``workers`` (baseline vs 2 persistent worker processes), ``device_loader``
   (baseline vs the device-resident loader, all in this process) and ``a_a`` (baseline
   vs itself).  The summary per condition and kind is ``../loading-drift``'s: the block
   medians' median, their spread (rms, log), one block's own standard error (log) and
   the ratio of the two (``excess``: 1 when blocks differ only as their intervals say).

The probe pins with ``os.sched_setaffinity``; part 2 pins every thread of this process
and of the worker processes and restores all CPUs after each pinned block.
``python measure.py OUT.json --resummarize`` recomputes the summaries from the stored blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "loading-drift"))
from measure import _model_name, block, summarize  # noqa: E402  (../loading-drift/measure.py)

QOS = "/dev/cpu_dma_latency"
ECHO = "import os\nwhile os.read(0, 1) == b'x':\n    os.write(1, b'x')\n"
CONDITIONS = {"os": ("workers", "device_loader", "a_a"), "os-shared": ("workers",), "os-split": ("workers",),
              "awake": ("workers", "device_loader", "a_a")}


@contextmanager
def held(on: bool):
    """The PM QoS request of 0 µs, held for the block when ``on``."""
    fd = None
    if on:
        fd = os.open(QOS, os.O_WRONLY)
        os.write(fd, struct.pack("i", 0))
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def roundtrip_us(same_cpu: bool, seconds: float = 0.1) -> float:
    cpus = sorted(os.sched_getaffinity(0))
    mine = set(cpus)
    child = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    send, receive = child.stdin.fileno(), child.stdout.fileno()
    try:
        os.sched_setaffinity(child.pid, {cpus[0] if same_cpu else cpus[1]})
        os.sched_setaffinity(0, {cpus[0]})
        os.write(send, b"x")
        os.read(receive, 1)
        times = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            os.write(send, b"x")
            os.read(receive, 1)
            times.append(time.perf_counter() - t)
    finally:
        os.sched_setaffinity(0, mine)
        child.stdin.close()
        child.wait()
    return statistics.median(times) * 1e6


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` to ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:
            pass


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0, help="of part 2")
    parser.add_argument("--block", type=float, default=1.5, help="s per block (the smoke profile's row budget)")
    parser.add_argument("--probes", type=int, default=20, help="0.1 s probes per probe condition")
    parser.add_argument("--resummarize", action="store_true",
                        help="measure nothing: recompute the summaries of the blocks stored in OUT and rewrite it")
    args = parser.parse_args()
    if args.resummarize:
        result = json.loads(args.out.read_text())
        result["summary"] = {c: {k: summarize(b) for k, b in kinds.items()} for c, kinds in result["blocks"].items()}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        _print(result)
        return 0
    if args.minutes <= 0 or args.block <= 0 or args.probes <= 0:
        parser.error("--minutes, --block and --probes must be > 0")
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs two CPUs")
    if not os.access(QOS, os.W_OK):
        parser.error(f"cannot write {QOS} (needs root)")

    import torch

    from hpml.bench import workloads
    from hpml.bench.harness import BenchSession, Side
    from hpml.bench.matrix import Case
    from hpml.bench.paired import paired_speedup
    from hpml.bench.profiles import get_profile
    from hpml.bench.realdata import RealData

    started = time.time()
    probe: dict[str, dict[str, list[float]]] = {}
    for awake in (False, True):
        with held(awake):
            probe["awake" if awake else "os"] = {
                "same_cpu_us": [round(roundtrip_us(True), 2) for _ in range(args.probes)],
                "cross_cpu_us": [round(roundtrip_us(False), 2) for _ in range(args.probes)]}
    for cond, p in probe.items():
        print(cond, {k: statistics.median(v) for k, v in p.items()}, flush=True)

    profile = get_profile("smoke")
    session = BenchSession(profile, RealData(None, Path(tempfile.mkdtemp(prefix="cpu-wakeup-")), profile,
                                             samples=profile.load_batches * 8))

    def side(optimization: str) -> Side:
        s = Side(workloads.loading_workload(Case("load", "cifar10", "cpu", optimization, source="real"), session), "cpu")
        s.warm(max(1, profile.warmup_rounds) + 2)
        return s

    before = set(children(os.getpid()))
    base = side("baseline")
    opts = {"workers": side("workers"), "device_loader": side("device_loader"), "a_a": base}
    workers = sorted(set(children(os.getpid())) - before)  # the persistent worker processes
    if len(workers) != profile.num_workers:
        parser.error(f"expected {profile.num_workers} worker processes, found {workers}")
    cpus = sorted(os.sched_getaffinity(0))
    everywhere = set(cpus)
    placement = {"os": None, "awake": None, "os-shared": ({cpus[0]}, {cpus[0]}), "os-split": ({cpus[0]}, {cpus[1]})}
    blocks: dict[str, dict[str, list[dict]]] = {c: {k: [] for k in kinds} for c, kinds in CONDITIONS.items()}
    t0 = time.time()
    while time.time() - t0 < args.minutes * 60:
        for cond, kinds in CONDITIONS.items():
            for kind in kinds:
                main_cpus, worker_cpus = placement[cond] or (everywhere, everywhere)
                pin(os.getpid(), main_cpus)
                for w in workers:
                    pin(w, worker_cpus)
                with held(cond == "awake"):
                    opt = opts[kind]
                    base(), opt()  # one call each under the new condition before timing
                    base_s, opt_s = block(base, opt, args.block)
                pin(os.getpid(), everywhere)
                for w in workers:
                    pin(w, everywhere)
                r = paired_speedup(base_s, opt_s, scale=opt.samples_per_round / base.samples_per_round)
                blocks[cond][kind].append({"t_s": round(time.time() - t0, 2), "pairs": r.pairs,
                                           "speedup": round(r.estimate, 4), "interval": [round(v, 4) for v in r.interval],
                                           "halfwidth": round(r.halfwidth, 4),
                                           "baseline_median_ms": round(statistics.median(base_s) * 1e3, 3)})
        print(f"{time.time() - t0:6.1f}s  " + "  ".join(
            f"{c}/{k} {v[-1]['speedup']:.3f}" for c, ks in blocks.items() for k, v in ks.items()), flush=True)
    result = {
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": {"cpu_count": os.cpu_count(), "processor": _model_name(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "loadavg_at_start": os.getloadavg(), "kernel": platform.release(),
                    "cpuidle_driver": _read("/sys/devices/system/cpu/cpuidle/current_driver")},
        "profile": profile.name, "num_workers": profile.num_workers, "block_s": args.block,
        "probe": probe,
        "summary": {c: {k: summarize(b) for k, b in ks.items()} for c, ks in blocks.items()},
        "blocks": blocks,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    _print(result)
    return 0


def _print(result: dict) -> None:
    for cond, p in result["probe"].items():
        print(f"probe {cond}: " + ", ".join(f"{k} median {statistics.median(v):.1f} (min {min(v):.1f}, max {max(v):.1f})"
                                            for k, v in p.items()))
    for cond, kinds in result["summary"].items():
        for kind, s in kinds.items():
            print(f"{cond:10} {kind:14} median {s['median_speedup']:.3f}x  between blocks {s['between_blocks_rms_log']:.4f}  "
                  f"one block's se {s['within_block_se_log']:.4f}  excess {s['excess']}  blocks {s['blocks']}")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
