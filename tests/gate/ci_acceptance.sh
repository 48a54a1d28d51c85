#!/usr/bin/env bash
# Acceptance check of CI's A/B stage (issue 12), for a quiet machine; ~5 minutes on 2 cores.
#   source /work/venv/bin/activate; tests/gate/ci_acceptance.sh [REPO]   (default: this checkout; its HEAD is cloned)
# In a fresh clone: a comment-only commit must pass `hpml gate --base auto` (exit 0), and a commit
# that adds ~8% compute to train_step (an extra no-grad forward on a quarter of each micro-batch)
# must fail it (exit 1). The gate's table prints the time change it measured for each row.
set -uo pipefail
repo="$(cd "${1:-$(dirname "$0")/../..}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone" && cd "$work/clone" || exit 2
export PYTHONPATH="$PWD"
gate() { python -m hpml gate --base auto; }
commit() { git -c user.name=ci -c user.email=ci@example.com commit -qam "$1"; }

echo "== comment-only commit (expect exit 0)"
echo '# a comment-only change' >> hpml/train/step.py
commit "comment only"
gate; comment_rc=$?

echo "== ~8% more compute in train_step (expect exit 1)"
python - <<'PY'
from pathlib import Path
p = Path("hpml/train/step.py")
s = p.read_text()
old = "        loss_sum += loss.detach()\n"
assert old in s
p.write_text(s.replace(old, old + "        with torch.no_grad(), state.autocast():  # planted regression (acceptance check)\n"
                                  "            state.model(x[: max(1, x.shape[0] // 4)])\n", 1))
PY
commit "train_step: extra no-grad forward on a quarter of the batch"
gate; slow_rc=$?

echo "comment-only: exit $comment_rc (expected 0); ~8% compute: exit $slow_rc (expected 1)"
[ "$comment_rc" -eq 0 ] && [ "$slow_rc" -eq 1 ]
