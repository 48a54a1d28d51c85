"""A failing or dead rank ends the whole run quickly, with one line naming it; nothing hangs
and no process is left behind."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import torch
import torch.distributed as dist

from hpml.distributed import RankFailed, spawn
from hpml.distributed.ranks import describe, rank_error
from hpml.errors import HpmlError, RunFailed

pytestmark = pytest.mark.ddp

#: s; the launcher must report a rank's failure this soon after it happens.
REPORT_WITHIN = 5.0


def _rank1_raises(env) -> None:
    if env.rank == 1:
        raise ValueError(f"boom from rank 1 at {time.time()!r}")
    while True:  # rank 0 waits in collectives for a rank that is gone
        dist.all_reduce(torch.ones(1))


def _rank1_killed_mid_training(env) -> None:
    import torch.nn as nn

    from hpml.distributed.wrap import ddp_wrap
    from hpml.train import make_state, train_step

    torch.manual_seed(0)
    state = make_state(nn.Linear(8, 2), device="cpu", lr=0.1)
    state.model, state.no_sync = ddp_wrap(state)
    for step in range(100_000):
        if env.rank == 1 and step == 5:
            with open(os.environ["HPML_KILL_STAMP"], "w") as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)
        train_step(state, [(torch.randn(4, 8), torch.randint(0, 2, (4,)))])


@pytest.fixture
def no_orphans():
    """Fail if the test leaves child processes of this process behind."""
    from multiprocessing import resource_tracker

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    # multiprocessing's resource tracker is started once, on the first spawn, and lives
    # as long as this process: a helper, not a rank.
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.pid != tracker]
    _, alive = psutil.wait_procs(left, timeout=2)
    assert not alive, f"orphan processes: {[(p.pid, p.name()) for p in alive]}"


def test_a_rank_that_raises_fails_the_run_with_its_message(no_orphans):
    with pytest.raises(RankFailed, match=r"^rank 1: ValueError: boom from rank 1") as info:
        spawn(_rank1_raises, 2, timeout=20, threads=1)
    raised_at = float(str(info.value).rsplit(" at ", 1)[1])
    assert time.time() - raised_at < REPORT_WITHIN
    assert info.value.rank == 1 and "Traceback" in info.value.traceback
    assert "\n" not in str(info.value)


def test_a_killed_rank_ends_the_run_within_seconds(no_orphans, tmp_path, monkeypatch):
    stamp = tmp_path / "killed_at"
    monkeypatch.setenv("HPML_KILL_STAMP", str(stamp))  # inherited by the spawned ranks
    with pytest.raises(RankFailed, match=r"^rank 1: died, killed by SIGKILL"):
        spawn(_rank1_killed_mid_training, 2, timeout=20, threads=1)
    assert time.time() - float(stamp.read_text()) < REPORT_WITHIN


@pytest.mark.parametrize(
    "exc, kind, launcher_type",
    [
        (HpmlError("unknown dataset 'x'"), "hpml", HpmlError),
        (RunFailed("loss became nan at step 3"), "failed", RankFailed),
        (RuntimeError("[gloo/pair.cc:561] Connection closed by peer [127.0.0.1]:9122"), "peer", RankFailed),
        (dist.DistBackendError("NCCL communicator was aborted on rank 0"), "peer", RankFailed),  # by its type
        # a workload's own error is the cause even when its words sound like a collective's
        (RuntimeError("timeout while reading the dataset's lock file"), "error", RankFailed),
        (KeyError("weight"), "error", RankFailed),
    ],
)
def test_rank_errors_keep_their_cli_meaning(exc, kind, launcher_type):
    got_kind, message = describe(exc)
    assert got_kind == kind and "\n" not in message
    raised = rank_error(3, got_kind, message)
    assert isinstance(raised, launcher_type) and str(raised).startswith("rank 3: ")
