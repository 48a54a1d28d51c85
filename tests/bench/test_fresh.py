"""Process-wide optimizations are measured in fresh processes: nothing leaks into this one."""

from __future__ import annotations

import pytest

from hpml.bench.fresh import FreshSide
from hpml.bench.session import BenchSession
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.workloads import inference_workload
from hpml.train.malloc import host_allocator_tuned, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def test_a_process_wide_side_runs_in_its_own_process_and_leaves_this_one_alone(tmp_path):
    session = BenchSession(get_profile("smoke"), real_data=None)
    side = FreshSide(Case("inference", "digits", "cpu", "host_allocator"), session, inference_workload)
    try:
        readings = side.warm(1)
        assert readings["peak_rss_bytes"] > 0
        seconds = [side() for _ in range(2)]
        assert all(s > 0 for s in seconds)
        assert side.describe()["samples_per_round"] == session.profile.small_image_batch
        assert side._proc.pid is not None and side._proc.is_alive()
    finally:
        side.close()
    assert not side._proc.is_alive()
    assert not host_allocator_tuned()  # the tuning happened over there
