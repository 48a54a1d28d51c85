"""hpml: a performance test suite for ML training optimizations.
Public names load their module (and torch) on first use, so ``hpml gate`` and ``hpml report`` start without torch."""

from typing import Any

from hpml.errors import HpmlError

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "create_dataset": "hpml.data",
    "list_datasets": "hpml.data",
    "create_model": "hpml.models",
    "list_models": "hpml.models",
    "list_optimizations": "hpml.train.optimizations",
}

__all__ = [
    "HpmlError", "create_dataset", "create_model", "list_datasets", "list_models", "list_optimizations",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    raise AttributeError(f"module 'hpml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
