"""Does a loading row's paired speedup drift while the machine sits idle?  ``python measure.py OUT.json``

One process builds three loading workloads of the default run's ``load:cifar10:cpu`` group
(smoke profile, CIFAR-10 batches in the real on-disk format, written to a temporary folder):
the ``baseline`` loader, ``workers`` (2 persistent worker processes) and ``device_loader``.
Each is built once and warmed up; then, for ``--minutes``, the script cycles through three
blocks of ``--block`` seconds each, every block ABBA pairs as :func:`hpml.bench.paired.measure_pairs`
takes them:

* ``workers``: baseline vs workers;
* ``device_loader``: baseline vs the device-resident loader;
* ``a_a``: baseline vs itself (the A/A control).

Per block it records the time, the median per-pair ratio and its 95 % interval
(:func:`hpml.bench.paired.paired_speedup`, what a default-run row reports) and the CPU the
main process ran on.  The summary per kind compares how much the block medians differ
(the spread between blocks: rms of their log deviations from the kind's median) with what
the blocks' own intervals allow (their median half-width / 1.96): an excess means the ratio
moves between blocks more than the pairs within a block show, so one row of a few seconds
cannot capture it and a second run, minutes later, meets another value.  It also gives the
lag-1 autocorrelation of the block medians (near 1: slow drift; near 0: independent blocks).

Run it on a quiet machine (nothing else using the CPUs).  The workloads and the loop come
from hpml itself (:mod:`hpml.bench.workloads`), so this times exactly what the rows time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def current_cpu() -> int:
    """The CPU this process last ran on (field 39 of /proc/self/stat); -1 where unreadable."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return -1


def block(base, opt, seconds: float) -> tuple[list[float], list[float]]:
    """ABBA pairs of ``base`` and ``opt`` (each returns its own seconds) for ``seconds``."""
    base_s: list[float] = []
    opt_s: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if len(base_s) % 2 == 0:
            b, o = base(), opt()
        else:
            o, b = opt(), base()
        base_s.append(b)
        opt_s.append(o)
    return base_s, opt_s


#: Blocks per simulated row in :func:`summarize` (six 0.25 s blocks: one smoke row's 1.5 s).
ROW_BLOCKS = 6


def summarize(blocks: list[dict]) -> dict:
    logs = np.log([b["speedup"] for b in blocks])
    centre = float(np.median(logs))
    between = float(np.sqrt(np.mean((logs - centre) ** 2)))
    within = statistics.median(b["halfwidth"] for b in blocks) / 1.959964
    lags = {k: round(float(np.corrcoef(logs[:-k], logs[k:])[0, 1]), 3)
            for k in (1, 2, 3, 4, 6, 8, 16, 32, 64, 128) if len(logs) > k + 2}
    first, second = logs[: len(logs) // 2], logs[len(logs) // 2:]
    # A row made of ROW_BLOCKS blocks, taken every `stride`-th block (stride 1: back to back, as a
    # row is measured; larger: the row's blocks spread out in time, e.g. taking turns with other
    # rows): how much such row estimates (median of their blocks) differ from one another.
    spacing = (blocks[-1]["t_s"] - blocks[0]["t_s"]) / (len(blocks) - 1) if len(blocks) > 1 else None
    spread = {}
    for stride in (1, 2, 4, 8, 16):
        span = stride * ROW_BLOCKS
        rows = [float(np.median(logs[i:i + span:stride])) for i in range(0, len(logs) - span + 1, span)]
        if len(rows) >= 3:  # >= 18 blocks, so spacing is known
            spread[stride] = {"rows": len(rows), "span_s": round(spacing * span, 1), "sd_log": round(float(np.std(rows)), 4)}
    return {
        "blocks": len(blocks),
        "median_speedup": round(math.exp(centre), 4),
        "min": round(float(np.exp(logs.min())), 4),
        "max": round(float(np.exp(logs.max())), 4),
        "between_blocks_rms_log": round(between, 4),  # spread of the block medians
        "within_block_se_log": round(within, 4),  # what one block's interval says about its median
        "excess": round(between / within, 2) if within > 0 else None,
        "lag1_autocorrelation": lags.get(1),
        "autocorrelation_by_lag": lags,  # blocks apart -> correlation of their log medians
        "block_spacing_s": round(spacing, 3) if spacing is not None else None,
        "first_half_vs_second_half": round(math.exp(float(np.median(second) - np.median(first))), 4),
        "row_estimates_by_block_stride": spread,  # stride -> rows, seconds a row spans, sd of their log estimates
        "blocks_with_the_kinds_median_in_their_interval": sum(
            b["interval"][0] <= math.exp(centre) <= b["interval"][1] for b in blocks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--block", type=float, default=1.5, help="s per block (the smoke profile's row budget)")
    parser.add_argument("--resummarize", action="store_true",
                        help="measure nothing: recompute the summary of the blocks stored in OUT and rewrite it")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the workers loader (default: the smoke profile's num_workers)")
    parser.add_argument("--kinds", default="workers,device_loader,a_a",
                        help="comma-separated blocks to cycle through (default: all three)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.block <= 0:
        parser.error("--minutes and --block must be > 0")
    if args.resummarize:
        result = json.loads(args.out.read_text())
        result["summary"] = {kind: summarize(b) for kind, b in result["blocks"].items()}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        for kind, s in result["summary"].items():
            print(kind, json.dumps(s))
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - {"workers", "device_loader", "a_a"}:
        parser.error(f"--kinds: pick from workers, device_loader, a_a; got {args.kinds!r}")

    import torch

    from hpml.bench import workloads
    from hpml.bench.harness import BenchSession, Side
    from hpml.bench.matrix import Case
    from hpml.bench.paired import paired_speedup
    from hpml.bench.profiles import get_profile
    from hpml.bench.realdata import RealData

    profile = get_profile("smoke")
    if args.workers is not None:
        if args.workers < 1:
            parser.error(f"--workers must be >= 1, got {args.workers}")
        profile = dataclasses.replace(profile, num_workers=args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="loading-drift-"))
    session = BenchSession(profile, RealData(None, scratch, profile, samples=profile.load_batches * 8))

    def side(optimization: str) -> Side:
        s = Side(workloads.loading_workload(Case("load", "cifar10", "cpu", optimization, source="real"), session), "cpu")
        s.warm(max(1, profile.warmup_rounds) + 2)
        return s

    base = side("baseline")
    opts = {kind: base if kind == "a_a" else side(kind) for kind in kinds}
    blocks: dict[str, list[dict]] = {k: [] for k in opts}
    t0 = time.time()
    while time.time() - t0 < args.minutes * 60:
        for kind, opt in opts.items():
            cpu = current_cpu()
            base_s, opt_s = block(base, opt, args.block)
            r = paired_speedup(base_s, opt_s, scale=opt.samples_per_round / base.samples_per_round)
            blocks[kind].append({"t_s": round(time.time() - t0, 2), "cpu": cpu, "pairs": r.pairs,
                                 "speedup": round(r.estimate, 4), "interval": [round(v, 4) for v in r.interval],
                                 "halfwidth": round(r.halfwidth, 4)})
        line = "  ".join(f"{k} {v[-1]['speedup']:.3f}±{100 * v[-1]['halfwidth']:.0f}%" for k, v in blocks.items())
        print(f"{time.time() - t0:6.1f}s cpu{cpu}  {line}", flush=True)
    summary = {kind: summarize(b) for kind, b in blocks.items()}
    for kind, s in summary.items():
        print(kind, json.dumps(s))
    result = {
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "machine": {"cpu_count": os.cpu_count(), "processor": _model_name(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "loadavg_at_start": os.getloadavg()},
        "profile": profile.name, "num_workers": profile.num_workers, "block_s": args.block, "summary": summary, "blocks": blocks,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
