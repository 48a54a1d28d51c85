"""NVML energy, pinned host memory and GPU facts (hpml.measure.gpu): the CPU path, NVML absent,
and a fake NVML so the arithmetic is checked without a GPU; the real counter in a gpu-marked test."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from hpml.measure import gpu
from hpml.measure.memory import MemoryTracker
from hpml.measure.tracker_registry import Trackers
from hpml.results.metric_registry import METRICS, per_unit


@pytest.fixture(autouse=True)
def fresh_nvml():
    gpu.reset_nvml_for_tests()
    yield
    gpu.reset_nvml_for_tests()


class FakeNvmlError(Exception):
    pass


def fake_nvml(readings_mj=(), *, init_fails=False, no_counter=False, bus_ids=("0000:17:00.0",)):
    """A stand-in ``pynvml``: an energy counter that returns ``readings_mj`` in turn."""
    lib = types.ModuleType("pynvml")
    lib.NVML_CLOCK_SM, lib.NVML_CLOCK_MEM = 1, 2
    lib.asked = []
    readings = iter(readings_mj)

    def init():
        if init_fails:
            raise FakeNvmlError("Driver Not Loaded")

    def handle(bus):
        bus = bus.decode()  # passed as bytes (older nvidia-ml-py hands it to ctypes as is)
        lib.asked.append(bus)
        if bus not in bus_ids:
            raise FakeNvmlError("Not Found")
        return ("handle", bus)

    def energy(h):
        assert h == ("handle", bus_ids[0])
        if no_counter:
            raise FakeNvmlError("Not Supported")
        return next(readings)

    def unsupported(*args):
        raise FakeNvmlError("Not Supported")

    lib.nvmlInit = init
    lib.nvmlDeviceGetHandleByPciBusId = handle
    lib.nvmlDeviceGetTotalEnergyConsumption = energy
    lib.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    lib.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1755, 2: 2619}[kind]
    lib.nvmlDeviceGetMaxClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    lib.nvmlDeviceGetEnforcedPowerLimit = unsupported if no_counter else (lambda h: 700000)  # mW
    return lib


@pytest.fixture
def with_nvml(monkeypatch):
    """Install a fake pynvml; CUDA device 0 sits at bus 0000:17:00.0; syncs are no-ops (no GPU here)."""
    def install(lib):
        monkeypatch.setitem(sys.modules, "pynvml", lib)
        monkeypatch.setattr(gpu, "pci_bus_id", lambda index: "0000:17:00.0" if index == 0 else "0000:99:00.0")
        monkeypatch.setattr(gpu, "synchronize", lambda device: None)
        return lib
    return install


def run_region(tracker):
    tracker.start()
    return tracker.stop()


# --- the CPU path and NVML absent ------------------------------------------------------------


def test_on_cpu_every_gpu_metric_is_none_with_the_reason():
    values = run_region(Trackers("cpu"))
    for name in ("device_energy_j", "peak_pinned_host_bytes", "peak_reserved_bytes"):
        assert values[name] is None, name
    assert values["device_energy_reason"] == "not a CUDA device (cpu)"
    assert values["pinned_host_reason"] == "not a CUDA device (cpu)"


def test_without_nvml_the_energy_is_none_and_says_how_to_get_it(monkeypatch, with_nvml):
    with_nvml(fake_nvml([1, 2]))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    values = run_region(gpu.EnergyTracker("cuda:0"))
    assert values == {"device_energy_j": None, "device_energy_reason": gpu.NVML_MISSING}
    facts = gpu.gpu_facts("cuda:0")
    assert all(facts[k] is None for k in gpu.GPU_FACTS)
    assert facts["gpu_facts_reason"] == gpu.NVML_MISSING


def test_nvml_that_does_not_start_is_a_reason_not_a_crash(with_nvml):
    with_nvml(fake_nvml(init_fails=True))
    values = run_region(gpu.EnergyTracker("cuda:0"))
    assert values["device_energy_j"] is None
    assert values["device_energy_reason"] == "NVML did not start: Driver Not Loaded"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only machine_info path")
def test_machine_info_records_none_gpu_facts_on_a_cpu_machine():
    from hpml.machine import machine_info

    info = machine_info()
    assert all(info[k] is None for k in gpu.GPU_FACTS)
    assert info["gpu_facts_reason"] == "no CUDA device"


# --- a fake NVML: the arithmetic -------------------------------------------------------------------


def test_energy_is_the_counter_difference_in_joules(with_nvml):
    lib = with_nvml(fake_nvml([1_000_000, 1_002_500]))  # mJ since the driver loaded
    values = run_region(gpu.EnergyTracker("cuda:0"))
    assert values == {"device_energy_j": pytest.approx(2.5), "device_energy_reason": None}
    assert lib.asked == ["0000:17:00.0"]  # the GPU found by its bus id, not NVML's numbering


def test_energy_is_recorded_per_sample():
    assert per_unit({"device_energy_j": 2.5}, calls=5, samples=50) == {"device_energy_j": pytest.approx(0.05)}
    assert METRICS["device_energy_j"].text(0.05) == "50 mJ"


@pytest.mark.parametrize("readings, reason", [
    ([5000, 5000], "did not advance"),
    ([5000, 4000], "went back"),
])
def test_a_counter_that_does_not_advance_is_none_with_the_reason(with_nvml, readings, reason):
    with_nvml(fake_nvml(readings))
    values = run_region(gpu.EnergyTracker("cuda:0"))
    assert values["device_energy_j"] is None and reason in values["device_energy_reason"]


def test_a_gpu_without_the_counter_or_not_found_is_none_with_the_reason(with_nvml):
    with_nvml(fake_nvml(no_counter=True))
    values = run_region(gpu.EnergyTracker("cuda:0"))
    assert values["device_energy_j"] is None and "no energy counter" in values["device_energy_reason"]
    values = run_region(gpu.EnergyTracker("cuda:1"))  # bus 0000:99:00.0: NVML does not know it
    assert values["device_energy_j"] is None and "cannot find cuda:1's GPU" in values["device_energy_reason"]


def test_gpu_facts_from_nvml(with_nvml):
    with_nvml(fake_nvml())
    assert gpu.gpu_facts("cuda:0") == {
        "gpu_driver": "550.54.15", "gpu_sm_clock_mhz": 1755, "gpu_mem_clock_mhz": 2619,
        "gpu_max_sm_clock_mhz": 1980, "gpu_max_mem_clock_mhz": 2619, "gpu_power_limit_w": 700.0,
        "gpu_facts_reason": None,
    }


def test_a_fact_nvml_does_not_support_is_none_and_named(with_nvml):
    with_nvml(fake_nvml(no_counter=True))
    facts = gpu.gpu_facts("cuda:0")
    assert facts["gpu_power_limit_w"] is None and facts["gpu_driver"] == "550.54.15"
    assert facts["gpu_facts_reason"] == "gpu_power_limit_w: Not Supported"


class FakeHostAllocator:
    """torch.cuda's pinned host allocator statistics: a current size and a resettable peak."""

    def __init__(self) -> None:
        self.current = self.peak = 0

    def hold(self, nbytes: int) -> None:
        self.current = nbytes
        self.peak = max(self.peak, nbytes)

    def stats(self):
        return {"allocated_bytes.current": self.current, "allocated_bytes.peak": self.peak}

    def reset(self) -> None:
        self.peak = self.current


def test_pinned_host_peak_is_the_region_peak_and_nests(monkeypatch):
    fake = FakeHostAllocator()
    monkeypatch.setattr(torch.cuda, "host_memory_stats", fake.stats)
    monkeypatch.setattr(torch.cuda, "reset_peak_host_memory_stats", fake.reset)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    fake.hold(4096)  # held before: the regions start from it
    outer, inner = gpu.PinnedHostTracker("cuda:0"), gpu.PinnedHostTracker("cuda:0")
    outer.start()
    fake.hold(1 << 20)
    fake.hold(8192)
    inner.start()  # resets the peak: the outer region's 1 MiB must survive it
    fake.hold(65536)
    fake.hold(0)
    assert inner.stop() == {"peak_pinned_host_bytes": 65536, "pinned_host_reason": None}
    assert outer.stop() == {"peak_pinned_host_bytes": 1 << 20, "pinned_host_reason": None}


def test_pinned_host_before_cuda_starts_is_zero(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "host_memory_stats", lambda: {})  # what torch returns before CUDA starts
    monkeypatch.setattr(torch.cuda, "reset_peak_host_memory_stats", lambda: pytest.fail("reset before CUDA started"))
    assert run_region(gpu.PinnedHostTracker("cuda:0")) == {"peak_pinned_host_bytes": 0, "pinned_host_reason": None}


def test_pinned_host_without_torch_statistics_is_none_with_the_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "host_memory_stats", lambda: {"num_host_alloc": 2})  # another torch's names
    values = run_region(gpu.PinnedHostTracker("cuda:0"))
    assert values["peak_pinned_host_bytes"] is None and "have no peak" in values["pinned_host_reason"]


# --- a real GPU -----------------------------------------------------------------------------------


@pytest.mark.gpu
def test_energy_and_reserved_memory_over_a_real_cuda_workload():
    pytest.importorskip("pynvml", reason="NVML bindings not installed: pip install nvidia-ml-py")
    a = torch.randn(4096, 4096, device="cuda")
    energy, memory = gpu.EnergyTracker("cuda"), MemoryTracker("cuda")
    memory.start()
    energy.start()
    for _ in range(200):  # 200 x 137 GFLOP: well over NVML's refresh period on any GPU
        a = torch.tanh(a @ a)
    values = energy.stop()
    memory.stop()
    assert values["device_energy_reason"] is None, values
    assert values["device_energy_j"] > 0
    assert memory.stats.peak_reserved_bytes >= memory.stats.peak_device_bytes >= 2 * 4096 * 4096 * 4


@pytest.mark.gpu
def test_pinned_host_peak_of_a_real_pinned_buffer():
    tracker = gpu.PinnedHostTracker("cuda")
    torch.zeros(1, device="cuda")  # CUDA started: torch keeps host allocator statistics
    tracker.start()
    pinned = torch.empty(8 << 20, dtype=torch.uint8, pin_memory=True)
    values = tracker.stop()
    assert pinned.is_pinned() and values["pinned_host_reason"] is None, values
    assert values["peak_pinned_host_bytes"] >= 8 << 20


def test_allocated_and_reserved_device_peaks_nest_together():
    """One reset clears CUDA's allocated and reserved peaks, so one mark carries both (memory.py)."""
    from hpml.measure.memory import HighWaterMark

    peaks = {"allocated": 0, "reserved": 0}
    mark = HighWaterMark(lambda: (peaks["allocated"], peaks["reserved"]),
                          lambda: peaks.update(allocated=0, reserved=0), zero=(0, 0))
    outer = mark.begin()
    peaks.update(allocated=100, reserved=512)
    inner = mark.begin()
    peaks.update(allocated=300, reserved=400)
    assert mark.end(inner) == (300, 400)
    assert mark.end(outer) == (300, 512)


def test_the_gpu_metrics_reach_the_run_summary_and_the_report_table():
    from hpml.results.metric_registry import summary_metrics

    extra = {"device_energy_j": 0.05, "device_energy_reason": None, "peak_reserved_bytes": 1 << 30,
             "peak_pinned_host_bytes": 1 << 20, "pinned_host_reason": None}
    assert summary_metrics(extra) == {"device_energy_j": 0.05, "peak_reserved_bytes": 1 << 30,
                                      "peak_pinned_host_bytes": 1 << 20}
    cpu_row = {"device_energy_j": None, "device_energy_reason": "not a CUDA device (cpu)", "peak_reserved_bytes": None}
    assert summary_metrics(cpu_row) == {}
    assert METRICS["device_energy_j"].report
