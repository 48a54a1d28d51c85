"""Idle CPUs kept awake while measuring (hpml.bench.idle): the request is really held, and
released, on the real PM QoS device where this user may write it; elsewhere the run says why."""

from __future__ import annotations

import os
import struct

import pytest

from hpml.bench.idle import (
    IDLE_ENV, QOS_PATH, cross_cpu_roundtrip_us, describe, idle_cpus, policy_from,
)
from hpml.errors import HpmlError


def _qos_limit() -> int:
    """The CPU latency limit the kernel applies now (the strictest held request), in µs."""
    with open(QOS_PATH, "rb") as f:
        return struct.unpack("i", f.read(4))[0]


def _can_hold() -> bool:
    return os.path.exists(QOS_PATH) and os.access(QOS_PATH, os.W_OK)


def test_policy_comes_from_the_option_then_the_environment_then_awake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(IDLE_ENV, raising=False)
    assert policy_from(None) == "awake"
    monkeypatch.setenv(IDLE_ENV, "os")
    assert policy_from(None) == "os"
    assert policy_from("awake") == "awake"
    with pytest.raises(HpmlError, match="unknown idle policy 'sleepy': pick one of awake, os"):
        policy_from("sleepy")


@pytest.mark.skipif(not _can_hold(), reason=f"{QOS_PATH} is not writable here (needs root)")
def test_awake_holds_a_zero_latency_request_on_the_real_device_and_releases_it():
    before = _qos_limit()
    with idle_cpus("awake", probe=False) as state:
        assert state.held and QOS_PATH in state.detail
        assert _qos_limit() == 0  # the kernel applies it: idle CPUs may not sleep at all
    if before != 0:  # (0: another process holds a request of its own, which hides the release)
        assert _qos_limit() == before  # released with the file
    with idle_cpus("os", probe=False) as state:
        assert not state.held and _qos_limit() == before


def test_a_request_that_cannot_be_held_is_reported_not_raised(tmp_path):
    missing = tmp_path / "no-such-device"
    with idle_cpus("awake", path=str(missing), probe=False) as state:
        assert not state.held and state.detail.startswith(f"cannot hold {missing}")
    if os.geteuid() != 0:  # root writes anything: only a non-root user sees the permission refused
        locked = tmp_path / "locked"
        locked.write_bytes(b"")
        locked.chmod(0o400)
        with idle_cpus("awake", path=str(locked), probe=False) as state:
            assert not state.held and state.detail.endswith("needs root")


def test_the_request_written_is_a_native_int_of_zero(tmp_path):
    fake = tmp_path / "qos"
    fake.write_bytes(b"")
    with idle_cpus("awake", path=str(fake), probe=False) as state:
        assert state.held and fake.read_bytes() == struct.pack("i", 0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_wake_up_probe_measures_a_round_trip_and_leaves_the_affinity_as_it_was():
    mine = os.sched_getaffinity(0)
    rt = cross_cpu_roundtrip_us(seconds=0.02)
    assert rt is not None and rt > 0
    assert os.sched_getaffinity(0) == mine
    one = {min(mine)}
    os.sched_setaffinity(0, one)
    try:
        assert cross_cpu_roundtrip_us(seconds=0.02) is None  # one CPU: no other CPU to wake
    finally:
        os.sched_setaffinity(0, mine)


def test_the_screen_line_says_what_held_and_warns_when_nothing_did():
    held = {"policy": "awake", "held": True, "detail": "x", "cross_cpu_roundtrip_us": 5.3}
    assert describe(held) == "idle CPUs: kept awake (PM QoS 0 us request held); cross-CPU wake-up round trip 5 us"
    assert describe({"policy": "os", "held": False, "detail": "x", "cross_cpu_roundtrip_us": None}) == \
        "idle CPUs: left to the OS (--hpml-idle os)"
    refused = describe({"policy": "awake", "held": False, "detail": "cannot hold /dev/cpu_dma_latency: needs root",
                        "cross_cpu_roundtrip_us": 88.0})
    assert refused.startswith("idle CPUs: NOT kept awake (cannot hold /dev/cpu_dma_latency: needs root); "
                              "cross-CPU wake-up round trip 88 us") and "loading with workers" in refused
    assert describe(None) is None and describe({}) is None  # runs from before hpml recorded it


def test_hpml_info_says_what_waking_another_cpu_costs(monkeypatch: pytest.MonkeyPatch, capsys):
    import hpml.measure
    from hpml.cli import main

    monkeypatch.setattr(hpml.measure, "measured_peak_flops", lambda *a, **k: 1e9)  # no matmul probe here
    assert main(["info"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("cpu wake-up"))
    if len(os.sched_getaffinity(0)) < 2:
        assert line.endswith("one CPU: nothing to wake")
    elif _can_hold():
        assert "us as the OS leaves idle CPUs; " in line and line.endswith("us kept awake, as pytest benchmarks measures")
    else:
        assert "benchmarks cannot keep them awake here (cannot hold" in line
