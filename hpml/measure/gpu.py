"""A GPU region's NVML energy and pinned host memory, and the GPU's facts (docs/measurement.md)."""

from __future__ import annotations

from typing import Any

import torch

from hpml.errors import one_line_message
from hpml.measure.memory import HighWaterMark, Region
from hpml.measure.timers import DeviceLike, synchronize
from hpml.measure.tracking import Tracking

NVML_MISSING = "NVML bindings are not installed: pip install nvidia-ml-py (hpml's [gpu] extra)"

_nvml_state: tuple[Any, str | None] | None = None  # (pynvml or None, why not): NVML is started once


def nvml() -> tuple[Any, str | None]:
    """``(pynvml, None)`` once NVML is started, else ``(None, why not)``; tried once per process."""
    global _nvml_state
    if _nvml_state is None:
        try:
            import pynvml
        except ImportError:
            _nvml_state = (None, NVML_MISSING)
        else:
            try:
                pynvml.nvmlInit()
                _nvml_state = (pynvml, None)
            except Exception as err:  # pynvml.NVMLError: no driver, no library
                _nvml_state = (None, f"NVML did not start: {one_line_message(err)}")
    return _nvml_state


def pci_bus_id(index: int) -> str:
    """The PCI bus id of torch's CUDA device ``index``: what NVML (every GPU) and torch (the visible ones) agree on."""
    p = torch.cuda.get_device_properties(index)
    return f"{p.pci_domain_id:04x}:{p.pci_bus_id:02x}:{p.pci_device_id:02x}.0"


def nvml_handle(device: DeviceLike) -> tuple[Any, Any, str | None]:
    """``(pynvml, handle of device's GPU, None)``, or ``(None, None, why not)``."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return None, None, f"not a CUDA device ({dev.type})"
    lib, reason = nvml()
    if lib is None:
        return None, None, reason
    try:
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        # bytes: older nvidia-ml-py passes the argument to ctypes as is (newer ones encode a str)
        return lib, lib.nvmlDeviceGetHandleByPciBusId(pci_bus_id(index).encode()), None
    except Exception as err:
        return None, None, f"NVML cannot find {dev}'s GPU: {one_line_message(err)}"


class EnergyTracker(Tracking):
    """The GPU's energy over a region, in J (``device_energy_j``; None with ``device_energy_reason``)."""

    def __init__(self, device: DeviceLike = "cpu") -> None:
        self.device = torch.device(device)

    def _read_mj(self) -> int:
        return int(self._lib.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def start(self) -> None:
        self._start_mj: int | None = None
        self._lib, self._handle, self._reason = nvml_handle(self.device)
        if self._lib is None:
            return
        try:
            self._start_mj = self._read_mj()
        except Exception as err:
            self._reason = f"NVML has no energy counter for this GPU (Volta or newer): {one_line_message(err)}"

    def stop(self) -> dict[str, Any]:
        energy, reason = None, self._reason
        if self._start_mj is not None:
            synchronize(self.device)  # queued work belongs to the region
            try:
                used_mj = self._read_mj() - self._start_mj
            except Exception as err:
                reason = f"NVML's energy counter could not be read: {one_line_message(err)}"
            else:
                if used_mj > 0:
                    energy = used_mj / 1000  # mJ -> J
                elif used_mj == 0:
                    reason = "NVML's energy counter did not advance over the region (shorter than its refresh)"
                else:
                    reason = "NVML's energy counter went back over the region (driver reloaded?)"
        return {"device_energy_j": energy, "device_energy_reason": reason}


def _pinned_peak() -> int:
    stats = torch.cuda.host_memory_stats()
    if not stats:  # CUDA not initialized yet (torch then returns {}): nothing pinned through torch
        return 0
    return int(stats["allocated_bytes.peak"])


def _reset_pinned_peak() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.reset_peak_host_memory_stats()


_PINNED_MARK = HighWaterMark(_pinned_peak, _reset_pinned_peak)


def pinned_stats_reason(device: DeviceLike) -> str | None:
    """Why torch's pinned host memory peak cannot be read for ``device`` (None when it can)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return f"not a CUDA device ({dev.type})"
    if not hasattr(torch.cuda, "reset_peak_host_memory_stats"):
        return f"torch {torch.__version__} keeps no pinned host allocator statistics"
    try:
        _pinned_peak()
    except Exception as err:  # KeyError: another torch's key names
        return f"torch {torch.__version__}'s pinned host allocator statistics have no peak: {one_line_message(err)}"
    return None


class PinnedHostTracker(Tracking):
    """Peak pinned host memory of a region (``peak_pinned_host_bytes``; None with ``pinned_host_reason``)."""

    def __init__(self, device: DeviceLike = "cpu") -> None:
        self.device = torch.device(device)
        self._region: Region | None = None

    def start(self) -> None:
        self._reason = pinned_stats_reason(self.device)
        self._region = _PINNED_MARK.begin() if self._reason is None else None

    def stop(self) -> dict[str, Any]:
        peak = None
        if self._region is not None:
            peak, self._region = _PINNED_MARK.end(self._region), None
        return {"peak_pinned_host_bytes": peak, "pinned_host_reason": self._reason}


#: machine_info's GPU facts from NVML (None each where not known; ``gpu_facts_reason`` says why).
GPU_FACTS = ("gpu_driver", "gpu_sm_clock_mhz", "gpu_mem_clock_mhz", "gpu_max_sm_clock_mhz",
             "gpu_max_mem_clock_mhz", "gpu_power_limit_w")


def gpu_facts(device: DeviceLike = "cuda") -> dict[str, Any]:
    """The driver, SM and memory clocks (now and max, MHz) and enforced power limit (W) of ``device``'s GPU."""
    facts: dict[str, Any] = dict.fromkeys(GPU_FACTS)
    reasons: list[str] = []
    lib, handle, reason = nvml_handle(device)
    if lib is None:
        facts["gpu_facts_reason"] = reason
        return facts

    def ask(key: str, read: Any) -> None:
        try:
            value = read()
            facts[key] = value.decode() if isinstance(value, bytes) else value
        except Exception as err:  # pynvml.NVMLError_NotSupported and kin: that fact stays None
            reasons.append(f"{key}: {one_line_message(err)}")

    sm, mem = lib.NVML_CLOCK_SM, lib.NVML_CLOCK_MEM
    ask("gpu_driver", lib.nvmlSystemGetDriverVersion)
    ask("gpu_sm_clock_mhz", lambda: int(lib.nvmlDeviceGetClockInfo(handle, sm)))
    ask("gpu_mem_clock_mhz", lambda: int(lib.nvmlDeviceGetClockInfo(handle, mem)))
    ask("gpu_max_sm_clock_mhz", lambda: int(lib.nvmlDeviceGetMaxClockInfo(handle, sm)))
    ask("gpu_max_mem_clock_mhz", lambda: int(lib.nvmlDeviceGetMaxClockInfo(handle, mem)))
    ask("gpu_power_limit_w", lambda: lib.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000)  # mW -> W
    facts["gpu_facts_reason"] = "; ".join(reasons) or None
    return facts


def reset_nvml_for_tests() -> None:
    """Forget the NVML state, so a test's fake (or missing) ``pynvml`` is seen (tests only)."""
    global _nvml_state
    _nvml_state = None


__all__ = ["EnergyTracker", "GPU_FACTS", "NVML_MISSING", "PinnedHostTracker", "gpu_facts", "nvml", "nvml_handle",
           "pinned_stats_reason", "reset_nvml_for_tests"]
