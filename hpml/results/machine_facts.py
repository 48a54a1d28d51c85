"""What a run says about its machine: the one parser of ``machine_info``, in each of its three shapes
(pytest-benchmark's with hpml's facts under ``"hpml"``, :func:`hpml.machine.machine_info` alone, a summary's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: The facts :func:`machine_facts` returns, in the order a summary stores them.
FACTS = ("cpu", "cores", "torch", "gpu", "node", "cpu_capability", "cpu_bf16", "system", "arch", "cpu_idle")


def cache_dir() -> Path:
    """Where measurements of this machine are kept for later runs: ``$HPML_CACHE_DIR`` or ``~/.cache/hpml``."""
    return Path(os.environ.get("HPML_CACHE_DIR") or "~/.cache/hpml").expanduser()


def machine_facts(machine_info: dict[str, Any] | None) -> dict[str, Any]:
    """The machine facts hpml reads (:data:`FACTS`); None for what the run did not record."""
    info = machine_info if isinstance(machine_info, dict) else {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    hpml = info.get("hpml") if isinstance(info.get("hpml"), dict) else {}

    def pick(*names: str) -> Any:
        for source in (hpml, info):
            for name in names:
                if source.get(name) not in (None, ""):
                    return source[name]
        return None

    cpu_name = pick("cpu")
    return {
        "cpu": cpu.get("brand_raw") or (cpu_name if isinstance(cpu_name, str) else None)
        or info.get("processor") or None,
        "cores": cpu.get("count") or pick("cpu_count", "cores"),
        "torch": pick("torch", "torch_version"),
        "gpu": pick("gpu", "cuda_device_name"),
        "node": info.get("node"),
        "cpu_capability": pick("cpu_capability"),
        "cpu_bf16": pick("cpu_bf16"),
        "system": info.get("system") or None,
        "arch": info.get("machine") or info.get("arch") or None,
        # idle CPUs kept awake (hpml.bench.idle): not in comparable_machine, so older runs still match
        "cpu_idle": pick("cpu_idle"),
    }


def comparable_machine(machine_info: dict[str, Any] | None) -> tuple[str, ...]:
    """What must match for two runs' raw timings to compare; not the host name (CI renames it every job)."""
    facts = machine_facts(machine_info)
    return tuple(str(facts[f] or "") for f in ("system", "arch", "cpu", "cores", "gpu"))


def machine_line(machine_info: dict[str, Any] | None) -> str:
    """``Intel(R) Xeon(R) ..., 4 cores, NVIDIA H100, idle CPUs kept awake``: the machine in one line."""
    facts = machine_facts(machine_info)
    parts = [str(facts["cpu"] or facts["arch"] or "?")]
    if facts["cores"]:
        parts.append(f"{facts['cores']} cores")
    if facts["gpu"]:
        parts.append(str(facts["gpu"]))
    idle = facts["cpu_idle"]
    if isinstance(idle, dict) and isinstance(idle.get("held"), bool):
        parts.append("idle CPUs kept awake" if idle["held"] else "idle CPUs left to sleep")
    return ", ".join(parts)


def cpu_class(machine_info: dict[str, Any] | None) -> str | None:
    """``AVX512+bf16``, ``AVX2``...: the CPU class (vector ISA, native bf16) a same-run speedup belongs to."""
    facts = machine_facts(machine_info)
    cap = facts["cpu_capability"]
    if not cap:
        return None
    return f"{cap}+bf16" if facts["cpu_bf16"] else str(cap)
