"""Do this machine's CPUs run at the same speed?  ``python measure.py OUT.json``

Three measurements of one single-threaded numpy workload (10 passes of ``np.sin`` over 20k
floats, ~2 ms; the tiny benchmark of ``tests/gate/tinybench.py``):

1. ``trace``: one process pinned to each CPU, both running at once for ``--seconds``; the
   median call time of each CPU per second, and their ratio.
2. ``processes``: two forked processes taking turns, call by call, in ABBA order (as
   ``hpml gate --base`` runs its two sessions), 45 calls each; the ratio of their median call
   times, per trial, first unpinned, then with both pinned to one CPU.  The work and the
   memory layout are the same in both (fork), so an unpinned ratio far from 1.0 is the
   CPUs, not the processes.
3. the machine: ``os.cpu_count()``, the affinity mask, ``/proc/cpuinfo``'s model name.

Run it on a quiet machine (nothing else using the CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

X0 = np.random.default_rng(0).random(20_000)


def work() -> None:
    x = X0
    for _ in range(10):
        x = np.sin(x)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def trace(seconds: float, cpus: list[int]) -> dict:
    readers = []
    for cpu in cpus:
        r, w = os.pipe()
        if os.fork() == 0:
            os.close(r)
            os.sched_setaffinity(0, {cpu})
            t0, rows = time.time(), []
            while time.time() - t0 < seconds:
                t = time.perf_counter()
                work()
                rows.append((time.time() - t0, time.perf_counter() - t))
            os.write(w, json.dumps(rows).encode())
            os._exit(0)
        os.close(w)
        readers.append(r)
    data = [json.loads(_read_all(r)) for r in readers]
    for _ in cpus:
        os.wait()
    per_second = {str(cpu): [round(statistics.median([d for t, d in rows if s <= t < s + 1]) * 1e3, 3)
                             for s in range(int(seconds))] for cpu, rows in zip(cpus, data)}
    a, b = (per_second[str(c)] for c in cpus[:2])
    ratios = [round(y / x, 3) for x, y in zip(a, b)]
    return {"seconds": int(seconds), "median_ms_per_second": per_second, "ratio_per_second": ratios,
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "seconds_off_by_more_than_10_percent": sum(abs(r - 1) > 0.10 for r in ratios)}


def turns(calls: int = 45) -> tuple[float, float]:
    """Two forked children, taking turns call by call (ABBA); their median call times in ms."""
    kids = []
    for _ in range(2):
        go_r, go_w = os.pipe()
        done_r, done_w = os.pipe()
        res_r, res_w = os.pipe()
        if os.fork() == 0:
            times = []
            for _ in range(calls):
                os.read(go_r, 1)
                t = time.perf_counter()
                work()
                times.append(time.perf_counter() - t)
                os.write(done_w, b"d")
            os.write(res_w, json.dumps(statistics.median(times) * 1e3).encode())
            os._exit(0)
        for fd in (go_r, done_w, res_w):
            os.close(fd)
        kids.append((go_w, done_r, res_r))
    for i in range(calls):
        for k in ((0, 1) if i % 4 in (0, 3) else (1, 0)):
            os.write(kids[k][0], b"g")
            os.read(kids[k][1], 1)
    medians = [json.loads(_read_all(res)) for _, _, res in kids]
    for _ in kids:
        os.wait()
    return medians[0], medians[1]


def processes(trials: int, pin: int | None) -> dict:
    allowed = os.sched_getaffinity(0)
    if pin is not None:
        os.sched_setaffinity(0, {pin})
    try:
        pairs = [turns() for _ in range(trials)]
    finally:
        os.sched_setaffinity(0, allowed)
    ratios = [round(b / a, 3) for a, b in pairs]
    logs = [abs(np.log(r)) for r in ratios]
    return {"pinned_to_cpu": pin, "trials": trials, "median_ms": [[round(a, 3), round(b, 3)] for a, b in pairs],
            "ratio": ratios, "ratio_min": min(ratios), "ratio_max": max(ratios),
            "log_ratio_rms_percent": round(100 * float(np.sqrt(np.mean(np.square(logs)))), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("measure.py: needs at least 2 CPUs in the affinity mask", file=sys.stderr)
        return 2
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    result = {
        "machine": {"cpu_count": os.cpu_count(), "affinity": cpus, "model_name": model,
                    "loadavg_before": open("/proc/loadavg").read().split()[:3]},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trace": trace(args.seconds, cpus[:2]),
        "processes_unpinned": processes(args.trials, None),
        "processes_pinned": processes(args.trials, cpus[0]),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    for key in ("processes_unpinned", "processes_pinned"):
        p = result[key]
        print(f"{key}: ratio {p['ratio_min']}-{p['ratio_max']}, rms |log ratio| {p['log_ratio_rms_percent']}%")
    t = result["trace"]
    print(f"trace: CPU ratio per second {t['ratio_min']}-{t['ratio_max']}, "
          f"{t['seconds_off_by_more_than_10_percent']}/{t['seconds']} s off by > 10%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
