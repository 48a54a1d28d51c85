"""Models and datasets from other installed packages, found through entry points.

A package registers with hpml by naming a module in one of two entry-point groups::

    # its pyproject.toml
    [project.entry-points."hpml.models"]
    mynet = "my_package.hpml_models"
    [project.entry-points."hpml.datasets"]
    mydata = "my_package.hpml_data"

Importing that module registers what it holds with hpml's own decorators
(``@hpml.models.register_model(name, modality=...)``, ``@hpml.data.register_dataset(info, ...)``),
exactly as hpml's built-in families do.  hpml loads every such module once, the first
time the model or dataset registry is read.  A plugin that raises while it registers is
named in a warning and left out; the rest of hpml works.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

GROUPS = ("hpml.models", "hpml.datasets")

_loaded = False


class PluginWarning(UserWarning):
    """A plugin could not be loaded; hpml goes on without it."""


def load_plugins(groups: tuple[str, ...] = GROUPS) -> list[str]:
    """Import every plugin module of ``groups`` (once per process); returns what it loaded.

    Re-entrant: a plugin that reads the registries while it registers does not start a
    second round of loading.
    """
    global _loaded
    if _loaded:
        return []
    _loaded = True
    loaded = []
    for group in groups:
        for ep in entry_points(group=group):
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not take hpml down with it
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                warnings.warn(
                    f"hpml: plugin {ep.name!r} ({ep.value}, group {group}) failed to register and is "
                    f"left out: {type(exc).__name__}: {first}",
                    PluginWarning,
                    stacklevel=2,
                )
            else:
                loaded.append(f"{group}:{ep.name}")
    return loaded


def reset() -> None:
    """Forget that plugins were loaded (tests that install a plugin mid-process)."""
    global _loaded
    _loaded = False
