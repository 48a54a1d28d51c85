"""Provenance: the machine and library versions every number is recorded with."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

import torch

from hpml.cpuinfo import cpu_flags, cpu_model


def _version(module: str) -> str | None:
    """The installed version of ``module``, from its package metadata: importing transformers
    only to read its version costs a second per benchmark session (already imported: its own)."""
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return loaded.__version__
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def git_commit(cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def machine_info() -> dict[str, Any]:
    """Versions, CPU and GPU description, thread settings."""
    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "transformers": _version("transformers"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu": cpu_model(),
        # the CPU class of hpml.results.machine_facts.cpu_class
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_has_bf16(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    # the GPU's driver, clocks and power limit (NVML: the optional [gpu] extra); None with the reason
    from hpml.measure.gpu import GPU_FACTS, gpu_facts

    info.update(gpu_facts("cuda:0") if cuda else {**dict.fromkeys(GPU_FACTS), "gpu_facts_reason": "no CUDA device"})
    return info
