"""Issue 13's before/after figures: I/O (1), hpml train warm-up (2), twins (5), peak probe (6).

Prints, for whatever hpml is importable (run it against two trees to compare):

1. ImageNet-format loading pass (real JPEGs written by the benchmark's RealData), 0 and 2
   workers: bytes per pass as read_chars / read_bytes / dataset_bytes, files' total size,
   and a cold-cache pass (page cache dropped first) where the code has it.
2. ``hpml train`` ResNet-18 on digits with ``--opt compile`` (and eager), 8 steps: train
   seconds and samples/s as recorded, and the warm-up seconds/steps where reported.
3. Loading rows, CIFAR-10 real files vs synthetic twin, baseline and device_loader:
   samples/s (median of 5 timed passes after 1 warm-up) and the device_loader speedup.
4. Peak FLOP/s probe (fp32, bf16): five refreshes in a fresh cache, the value each
   returns, and the theoretical CPU peak where the code derives it.

After (this tree):   PYTHONPATH=$PWD python benchmarks/results/audit_13.py
Before (main at 584bd62):
    git worktree add /tmp/hpml-584bd62 584bd62
    PYTHONPATH=/tmp/hpml-584bd62 python benchmarks/results/audit_13.py
About 2-3 minutes on 2 cores (torch.compile of ResNet-18 is most of it); run on a quiet
machine.  ``--skip-compile`` leaves section 2's compile run out.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch


class FakeBenchmark:
    """pytest-benchmark's fixture reduced to what the harness uses (no timing of its own)."""

    enabled = True

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.group = None
        self.stats = SimpleNamespace(stats=SimpleNamespace(median=1.0))

    _mode = None

    def _make_stats(self, iterations):  # what hpml.bench.compat.record_rounds uses (paired rows)
        return SimpleNamespace(update=lambda seconds: None)

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        for _ in range(warmup_rounds + rounds):
            if setup is not None:
                setup()
            target()


def _session(tmp: Path, samples: int = 64, **changes):
    from hpml.bench.harness import BenchSession
    from hpml.bench.profiles import get_profile
    from hpml.bench.realdata import RealData

    profile = dataclasses.replace(get_profile("smoke"), name="audit-13", rounds=3, warmup_rounds=1, **changes)
    return BenchSession(profile, RealData(None, tmp / f"data{samples}", profile, samples=samples)), profile


def io_figures(tmp: Path) -> None:
    from hpml.bench import workloads
    from hpml.bench.matrix import Case

    print("\n== 1. I/O of an ImageNet-format loading pass (bytes per pass) ==")
    session, profile = _session(tmp, large_image_batch=8, load_batches=4, num_workers=2)
    root = Path(session.real_data.root("imagenet"))
    files = [p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png")]
    per_pass = profile.load_batches * profile.large_image_batch
    mean_size = statistics.mean(p.stat().st_size for p in files)
    print(f"files decoded per pass: {per_pass}, mean file size {mean_size:,.0f} B "
          f"-> ~{per_pass * mean_size:,.0f} B of JPEG per pass")
    rows = [("baseline (0 workers)", Case("load", "imagenet", "cpu", "baseline", source="real")),
            ("workers (2)", Case("load", "imagenet", "cpu", "workers", source="real"))]
    if "cold_cache" in {f.name for f in dataclasses.fields(Case)}:
        rows.append(("cold cache (0 workers)", Case("load", "imagenet", "cpu", "baseline", source="real", cold_cache=True)))
    else:
        print("(no cold-cache row in this code)")
    for label, case in rows:
        bench = FakeBenchmark()
        session.run(bench, case, workloads.loading_workload)
        e = bench.extra_info
        print(f"{label:<24} read_chars {e.get('read_chars')!s:>12}  read_bytes {e.get('read_bytes')!s:>10}  "
              f"dataset_bytes {e.get('dataset_bytes', 'n/a')!s:>10}")


def warmup_figures(skip_compile: bool) -> None:
    from hpml.config import RunConfig
    from hpml.train.run import run

    print("\n== 2. hpml train, ResNet-18 on digits, batch 8, 8 steps ==")
    for opts in (("baseline",),) + ((() if skip_compile else (("compile",),))):
        cfg = RunConfig(model="resnet18", dataset="digits", device="cpu", batch_size=8, steps=8,
                        optimizations=opts, evaluate=False, train_size=64, test_size=16)
        record = run(cfg, progress=False)
        t = record["phases"]["train"]
        rate = record["train_samples_per_s"]
        print(f"{'+'.join(opts):<10} train seconds {t['seconds']:7.2f}  samples/s {rate if rate is None else round(rate, 1)}"
              f"  warm-up {t.get('warmup_seconds', 'not reported')} s over {t.get('warmup_steps', '?')} steps"
              f"  (steady {t.get('steady_seconds', 'n/a')} s)")


def twin_figures(tmp: Path) -> None:
    from hpml.bench import workloads
    from hpml.bench.matrix import Case

    print("\n== 5. Loading rows: CIFAR-10 real files vs synthetic twin (samples/s) ==")
    session, profile = _session(tmp, samples=512, small_image_batch=32, load_batches=8)
    rates = {}
    for source in ("real", "synthetic"):
        for opt in ("baseline", "device_loader"):
            spec = workloads.loading_workload(Case("load", "cifar10", "cpu", opt, source=source), session)
            spec.target()  # warm-up
            times = []
            for _ in range(5):
                start = time.perf_counter()
                spec.target()
                times.append(time.perf_counter() - start)
            rates[source, opt] = spec.samples_per_round / statistics.median(times)
            print(f"{source:<10} {opt:<14} {rates[source, opt]:10.0f} samples/s  "
                  f"(twin materialized: {spec.extra.get('twin_materialized', 'n/a')})")
    for source in ("real", "synthetic"):
        print(f"device_loader speedup on {source}: {rates[source, 'device_loader'] / rates[source, 'baseline']:.2f}x")


def peak_figures() -> None:
    from hpml.measure import peak as peak_mod

    print(f"\n== 6. Peak FLOP/s probe, {torch.get_num_threads()} threads, 5 refreshes in a fresh cache ==")
    for dtype in ("float32", "bfloat16"):
        values = [peak_mod.measured_peak_flops("cpu", dtype, refresh=True) for _ in range(5)]
        line = f"{dtype:<9} returned (GFLOP/s): " + ", ".join(f"{v / 1e9:.1f}" for v in values)
        if hasattr(peak_mod, "peak_estimate"):
            est = peak_mod.peak_estimate("cpu", dtype)
            theory = est.theoretical_flops_per_s
            line += f" | theoretical {theory / 1e9:.1f} ({est.theoretical_basis})" if theory else " | theoretical: n/a"
        print(line)


def main() -> None:
    import hpml

    torch.manual_seed(0)
    print(f"hpml from {hpml.__file__}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HPML_CACHE_DIR"] = str(Path(tmp) / "cache")  # fresh peak cache, fresh tokenizers
        io_figures(Path(tmp))
        twin_figures(Path(tmp))
        peak_figures()
        warmup_figures("--skip-compile" in sys.argv)


if __name__ == "__main__":
    main()
