"""Convergence runs under faults: a run killed mid-epoch resumes from its last checkpoint to
the same final accuracy; a diverging run fails the test naming the epoch and the last good
metrics, without hanging."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal

import pytest
import torch

from hpml.convergence import DIGITS, converge, digits_case
from hpml.convergence.recipes import make_case
from hpml.convergence.run import EPOCH_LOG
from hpml.train.checkpoint import CHECKPOINT_NAME

from .harness import run_case

#: A small digits case: 384 training images at 8 px, 6 steps per epoch, 3 epochs.
SMALL = make_case("digits", "resnet18", "sgd", "optimized",
                  recipe=dataclasses.replace(DIGITS, epochs=3, train_size=384, warmup_epochs=0.5))
KILL_AT_EPOCH = 3  # killed during this epoch, after the checkpoint of the one before
KILL_AT_STEP = 2  # ... at its second optimizer step
CHILD_TIMEOUT = 300  # s: a hung child fails the test instead of hanging it


def _train_until_killed(run_dir: str, threads: int) -> None:
    """Child process: train SMALL and SIGKILL itself mid-epoch (no cleanup, like an OOM kill)."""
    torch.set_num_threads(threads)  # the parent's: same arithmetic, same accuracy

    def arm(work, metrics):
        if metrics["epoch"] != KILL_AT_EPOCH - 1:
            return
        step = work.state.optimizer.step
        calls = {"n": 0}

        def step_then_maybe_die(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == KILL_AT_STEP:
                os.kill(os.getpid(), signal.SIGKILL)
            return step(*args, **kwargs)

        work.state.optimizer.step = step_then_maybe_die

    converge(SMALL, seed=0, device="cpu", run_dir=run_dir, on_epoch=arm)


@pytest.mark.slow  # ~30 s: two digits trainings; the default run's resume check is tests/train/test_fit.py's
def test_killed_run_resumes_from_its_checkpoint_to_the_same_accuracy(tmp_path, few_threads):
    straight = converge(SMALL, seed=0, device="cpu")

    child = multiprocessing.get_context("spawn").Process(target=_train_until_killed, args=(str(tmp_path), torch.get_num_threads()))
    child.start()
    child.join(CHILD_TIMEOUT)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"child did not die within {CHILD_TIMEOUT}s")
    assert child.exitcode == -signal.SIGKILL
    logged = [json.loads(line)["epoch"] for line in (tmp_path / EPOCH_LOG).read_text().splitlines()]
    assert logged == list(range(1, KILL_AT_EPOCH))  # killed before finishing epoch 3
    assert (tmp_path / CHECKPOINT_NAME).is_file()

    resumed = converge(SMALL, seed=0, device="cpu", run_dir=tmp_path, resume=True)
    assert [e["epoch"] for e in resumed.epochs] == [1, 2, 3]  # the curve spans the kill
    seconds = [e["seconds"] for e in resumed.epochs]
    assert seconds == sorted(seconds)
    assert resumed.final_accuracy == straight.final_accuracy
    assert resumed.epochs[-1]["test_loss"] == pytest.approx(straight.epochs[-1]["test_loss"], rel=1e-6)


def _poison_after_first_epoch(work, metrics):
    if metrics["epoch"] == 1:
        with torch.no_grad():
            for p in work.state.module.parameters():
                p.fill_(float("nan"))


def test_divergence_fails_the_test_with_the_epoch_and_last_good_metrics(request, tmp_path, few_threads):
    case = make_case("digits", "resnet18", "sgd", "baseline",
                     recipe=dataclasses.replace(DIGITS, epochs=3, train_size=128, warmup_epochs=0.5))
    with pytest.raises(pytest.fail.Exception) as failure:
        run_case(request.config, case, [0], tmp_path, device="cpu", on_epoch=_poison_after_first_epoch)
    message = str(failure.value)
    assert message.startswith("diverged: resnet18-digits-sgd-baseline seed 0: loss became nan at step ")
    assert "(epoch 2); last good metrics: {\"epoch\": 1, " in message and '"accuracy": ' in message
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert record["error"] == message.removeprefix("diverged: ") and not record["reached"]
    assert [e["epoch"] for e in record["epochs"]] == [1]  # the good epoch is kept


def test_a_fresh_run_does_not_inherit_an_old_curve(tmp_path, few_threads):
    (tmp_path / EPOCH_LOG).write_text(json.dumps({"epoch": 9, "seconds": 1.0, "accuracy": 0.1}) + "\n")
    case = make_case("digits", "resnet18", "sgd", "optimized",
                     recipe=dataclasses.replace(DIGITS, epochs=1, train_size=64, warmup_epochs=0.5))
    run = converge(case, seed=0, device="cpu", run_dir=tmp_path)
    assert [e["epoch"] for e in run.epochs] == [1]
    assert digits_case().name == "resnet18-digits-sgd-optimized"
