"""The benchmark suite's library: ``benchmarks/`` holds thin pytest files, what they run lives here
(profiles, matrix and skips, workloads, session and sides, the screen) so it can be unit-tested."""

from typing import Any

__all__ = ["PROFILES", "Profile", "get_profile", "list_profiles"]


def __getattr__(name: str) -> Any:
    # lazy: JSON-only commands import torch-free modules of bench and must not pay torch's import
    if name in __all__:
        from hpml.bench import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'hpml.bench' has no attribute {name!r}")
