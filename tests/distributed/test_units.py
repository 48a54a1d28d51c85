"""The distributed pieces that need no second process: environment, devices, metric
reduction, evaluation shards, FSDP blocks, the catalogue entries."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

from hpml.distributed import combine, env_from_environ, reduce_metrics
from hpml.distributed.data import ShardSampler
from hpml.distributed.env import DistEnv, check_nproc, rank_device, timeout_from
from hpml.distributed.wrap import make_wrapper, repeated_blocks
from hpml.errors import HpmlError
from hpml.train.optimizations import OptContext, compose, validate_optimizations

TORCHRUN_ENV = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}


def test_torchrun_environment_is_read_as_is():
    env = env_from_environ(TORCHRUN_ENV)
    assert env == DistEnv(rank=5, world_size=8, local_rank=1, local_world_size=4)
    assert (env.is_main, env.nodes) == (False, 2)


@pytest.mark.parametrize("missing", ["RANK", "MASTER_ADDR", "MASTER_PORT"])
def test_a_missing_torchrun_variable_is_named(missing):
    environ = {k: v for k, v in TORCHRUN_ENV.items() if k != missing}
    with pytest.raises(HpmlError, match=rf"\${missing} is not set"):
        env_from_environ(environ)


def test_malformed_environment_is_refused():
    with pytest.raises(HpmlError, match=r"\$RANK must be an integer, got 'x'"):
        env_from_environ(dict(TORCHRUN_ENV, RANK="x"))
    with pytest.raises(HpmlError, match="rank must be in"):
        env_from_environ(dict(TORCHRUN_ENV, RANK="8"))


def test_single_node_defaults_without_local_variables():
    env = env_from_environ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert (env.local_rank, env.local_world_size) == (1, 2)


def test_more_ranks_than_gpus_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(HpmlError, match=r"--nproc 2 needs 2 CUDA devices \(one per rank\) but 1 is available"):
        check_nproc(2, "cuda")
    check_nproc(4, "cpu")  # CPU ranks share the cores
    with pytest.raises(HpmlError, match="local rank 1 needs CUDA device 1 .* at most 1 processes per node"):
        rank_device("cuda", 1)  # torchrun started more ranks on this node than it has GPUs


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HPML_DIST_TIMEOUT", "7.5")
    assert timeout_from().total_seconds() == 7.5
    assert timeout_from(3).total_seconds() == 3
    monkeypatch.setenv("HPML_DIST_TIMEOUT", "soon")
    with pytest.raises(HpmlError, match="HPML_DIST_TIMEOUT"):
        timeout_from()


def test_nproc_under_torchrun_is_refused(monkeypatch):
    from hpml.distributed import launch_run

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(HpmlError, match="--nproc cannot be combined with torchrun"):
        launch_run(object(), nproc=2)


def test_metrics_combine_by_their_meaning():
    ranks = [
        {"epoch": 1, "step": 4, "lr": 0.1, "train_loss": 1.0, "seconds": 2.0, "samples": 30,
         "samples_per_s": 50.0, "accuracy": 0.5, "test_loss": 1.2, "peak_rss_bytes": 100, "read_bytes": None},
        {"epoch": 1, "step": 4, "lr": 0.1, "train_loss": 2.0, "seconds": 3.0, "samples": 10,
         "samples_per_s": 40.0, "accuracy": 1.0, "test_loss": 0.4, "peak_rss_bytes": 300, "read_bytes": None},
    ]
    got = combine(ranks)
    assert got == {
        "epoch": 1, "step": 4, "lr": 0.1,
        "train_loss": 1.5,  # equal training shards: plain mean
        "seconds": 3.0,  # the slowest rank
        "samples": 40, "samples_per_s": 90.0,  # totals
        "accuracy": pytest.approx(0.625), "test_loss": pytest.approx(1.0),  # sample-weighted
        "peak_rss_bytes": 300, "read_bytes": None,
    }


def test_a_rank_without_test_samples_does_not_skew_the_accuracy():
    got = combine([{"accuracy": 0.75, "samples": 8}, {"accuracy": float("nan"), "samples": 0}])
    assert got == {"accuracy": 0.75, "samples": 8}


def test_reduce_outside_a_process_group_is_the_identity():
    metrics = {"accuracy": 0.5, "samples": 3}
    assert reduce_metrics(metrics) == metrics and reduce_metrics(metrics) is not metrics


@pytest.mark.parametrize("n, world", [(64, 2), (65, 2), (7, 3), (1, 2)])
def test_evaluation_shards_partition_the_test_set(n, world):
    shards = [list(ShardSampler(n, r, world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    padded = [ShardSampler(n, r, world, pad=True) for r in range(world)]
    assert len({len(s) for s in padded}) == 1 and all(len(s) > 0 for s in padded)


def test_fsdp_shards_each_residual_block():
    from hpml.models import create_model

    model = create_model("resnet18", num_classes=10, image_size=32)
    blocks = repeated_blocks(model)
    assert [type(b).__name__ for b in blocks] == ["BasicBlock"] * 8
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    assert repeated_blocks(seq) == [seq[0], seq[2]]


def test_unknown_strategy_names_the_choices():
    with pytest.raises(HpmlError, match="choose from ddp, fsdp"):
        make_wrapper("zero3")


def test_distributed_optimizations_are_in_the_catalogue():
    assert compose(["sync_bn"], OptContext("cuda")).sync_bn
    assert compose(["fsdp"], OptContext("cpu")).strategy == "fsdp"
    with pytest.raises(HpmlError, match="sync_bn applies only to cuda"):
        validate_optimizations(["sync_bn"], "cpu")  # no SyncBatchNorm kernel for CPU tensors
    with pytest.raises(HpmlError, match="cannot be combined"):
        validate_optimizations(["fsdp", "ddp_static_graph"], "cpu")


def test_default_sgd_lr_scales_with_the_global_batch():
    from hpml.train.run_config import RunConfig
    from hpml.distributed.launch import scale_lr

    cfg = RunConfig(model="resnet18", dataset="digits", device="cpu", batch_size=32)
    assert scale_lr(cfg, 4).lr == pytest.approx(4 * cfg.effective_lr)
    assert scale_lr(cfg.replace(lr=0.05), 4).lr == 0.05  # explicit: as given
    assert scale_lr(cfg, 1) is cfg


def test_rendezvous_folders_of_dead_launchers_are_swept(tmp_path):
    # Issue 14, group 11: a launcher killed with -9 never runs its `finally`, so its
    # hpml-ddp-<pid>-* folder stayed in /tmp; the next launch removes it, and only it.
    import subprocess

    from hpml.distributed.ranks import WORKDIR_PREFIX, sweep_orphan_workdirs

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"{WORKDIR_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{WORKDIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{WORKDIR_PREFIX}notapid"
    for folder in (orphan, live, other):
        folder.mkdir()
        (folder / "rendezvous").write_text("x")
    assert sweep_orphan_workdirs(tmp_path) == [orphan]
    assert not orphan.exists() and live.is_dir() and other.is_dir()


def test_an_error_from_a_loader_worker_is_its_own_message_on_one_line():
    # Issue 14, group 9: DataLoader re-raises a worker's error with the worker's whole
    # traceback in the message; hpml reports the original message only.
    import torch

    from hpml.distributed.ranks import describe
    from hpml.errors import HpmlError, one_line_message

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            raise HpmlError(f"cannot decode image img_{index}.JPEG: bad header")

    loader = torch.utils.data.DataLoader(Broken(), num_workers=1, batch_size=1)
    with pytest.raises(HpmlError) as info:
        next(iter(loader))
    assert "Traceback" in str(info.value)  # what DataLoader does: the premise of the fix
    message = one_line_message(info.value)
    assert message == "cannot decode image img_0.JPEG: bad header (in a data loader worker)"
    assert describe(info.value) == ("hpml", message)


def test_more_cpu_ranks_than_cores_is_refused(monkeypatch):
    from hpml.distributed import env

    monkeypatch.setattr(env, "usable_cores", lambda: 2)
    env.check_cpu_ranks(2, "cpu")
    with pytest.raises(HpmlError, match="--nproc 3 exceeds the 2 CPU cores"):
        env.check_cpu_ranks(3, "cpu")


@pytest.mark.parametrize("version,refused", [("2.4.1+cu121", True), ("2.5.0", False), ("2.14.1+cu130", False)])
def test_fsdp_with_fp16_loss_scaling_needs_a_torch_that_unscales_sharded_gradients(version, refused):
    from hpml.distributed.wrap import fsdp_unsupported_reason
    from hpml.train.optimizations import Settings

    fsdp_fp16 = Settings(strategy="fsdp", autocast_dtype=torch.float16, grad_scaler=True)
    reason = fsdp_unsupported_reason(fsdp_fp16, version)
    assert (reason is not None) == refused
    if refused:
        assert f"this is torch {version}" in reason and "amp_bf16" in reason
    assert fsdp_unsupported_reason(Settings(strategy="fsdp"), version) is None  # no scaler: any torch
    assert fsdp_unsupported_reason(Settings(grad_scaler=True), version) is None  # DDP: any torch


def test_fsdp_with_fp16_loss_scaling_on_an_old_torch_is_refused_before_the_ranks_start(monkeypatch):
    import hpml.distributed.launch as launch
    import hpml.distributed.wrap as wrap
    from hpml.train.run_config import RunConfig
    from hpml.train.optimizations import Settings

    # What the run's settings would be on a GPU node (amp on CUDA: fp16 + GradScaler), on torch 2.4.
    monkeypatch.setattr("hpml.train.build.settings_for",
                        lambda cfg: Settings(strategy="fsdp", autocast_dtype=torch.float16, grad_scaler=True))
    real = wrap.fsdp_unsupported_reason
    monkeypatch.setattr(wrap, "fsdp_unsupported_reason", lambda settings: real(settings, "2.4.1"))
    with pytest.raises(HpmlError, match=r"needs torch >= 2\.5"):
        launch.check_run_options(RunConfig(model="resnet18", dataset="digits", device="cpu"))
