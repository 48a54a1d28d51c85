"""One process: digits baseline train step, 3 warm-up + N timed calls; prints median seconds."""
import sys, time, statistics
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))  # the repository root
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.harness import BenchSession
from hpml.bench.workloads import train_step_workload
opt = sys.argv[2] if len(sys.argv) > 2 else "baseline"
n = int(sys.argv[1])
prof = get_profile("smoke")
s = BenchSession(prof, None)
m = train_step_workload(Case("train", "digits", "cpu", opt, "sgd"), s)
for _ in range(3): m.target()
ts = []
for _ in range(n):
    t = time.perf_counter(); m.target(); ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.5f} {min(ts):.5f} {max(ts):.5f}")
