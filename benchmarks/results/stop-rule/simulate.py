"""How often does an A/A row's interval hold 1.0 under each stop rule?  Simulated calls.

``python benchmarks/results/stop-rule/simulate.py --reps 1000 --json FILE``: A/A rows (both
sides the same lognormal call-time distribution, 10 ms calls, smoke's target +-5 %, 1.5 s
budget, 6 pilot pairs), by call noise (log-sd), under

* ``first_narrow``: the rule before this change, reimplemented here: stop the first time
  a check (after 6 pairs, then every ~25 % more) finds the half-width <= the target;
* ``two_stage``: :func:`hpml.bench.paired.measure_pairs` as it is: the 6-pair pilot sizes
  the row once.

Each rule reports coverage (share of intervals holding 1.0), by stop reason, mean pairs
and the median and 90th percentile of the half-width reached.  Seeded: repeatable.
"""

from __future__ import annotations

import argparse
import collections
import json
import math

import numpy as np

from hpml.bench.paired import CHECK_RESAMPLES, Precision, measure_pairs, paired_speedup

TARGET, BUDGET, PILOT, MAX_PAIRS, CALL_S = 0.05, 1.5, 6, 200, 0.010


def first_narrow(base, opt, precision: Precision):
    b, o, spent, check = [], [], 0.0, precision.min_pairs
    while True:
        b.append(base()); o.append(opt()); spent += b[-1] + o[-1]; n = len(b)
        if n >= check:
            check = max(n + 1, int(n * 1.25))
            if paired_speedup(b, o, resamples=CHECK_RESAMPLES).halfwidth <= precision.target_halfwidth:
                return paired_speedup(b, o), "target"
        if n >= precision.min_pairs and (spent >= precision.budget_s or n >= precision.max_pairs):
            return paired_speedup(b, o), "budget"


def two_stage(base, opt, precision: Precision):
    run = measure_pairs(base, opt, precision)
    return run.result, run.stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--noise", default="0.03,0.06,0.09,0.12")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    precision = Precision(TARGET, BUDGET, PILOT, MAX_PAIRS)
    out = {"command": f"python benchmarks/results/stop-rule/simulate.py --reps {args.reps} --noise {args.noise} "
                      f"--seed {args.seed}", "target_halfwidth": TARGET, "budget_s": BUDGET, "pilot_pairs": PILOT,
           "call_s": CALL_S, "results": []}
    for sigma in (float(v) for v in args.noise.split(",")):
        for name, rule in (("first_narrow", first_narrow), ("two_stage", two_stage)):
            rng = np.random.default_rng(args.seed)
            call = lambda: CALL_S * math.exp(rng.normal(0.0, sigma))  # noqa: E731
            by_stop = collections.defaultdict(lambda: [0, 0])
            pairs, widths = [], []
            for _ in range(args.reps):
                result, stop = rule(call, call, precision)
                by_stop[stop][0] += 1
                by_stop[stop][1] += result.contains(1.0)
                pairs.append(result.pairs)
                widths.append(result.halfwidth)
            row = {"noise_log_sd": sigma, "rule": name, "reps": args.reps,
                   "coverage": round(sum(h for _, h in by_stop.values()) / args.reps, 4),
                   "by_stop": {k: {"rows": n, "coverage": round(h / n, 4)} for k, (n, h) in sorted(by_stop.items())},
                   "mean_pairs": round(float(np.mean(pairs)), 1),
                   "halfwidth_median": round(float(np.median(widths)), 4),
                   "halfwidth_p90": round(float(np.percentile(widths, 90)), 4)}
            out["results"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
