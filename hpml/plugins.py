"""Models and datasets from other installed packages, through the ``hpml.models`` and ``hpml.datasets``
entry-point groups (README, Plugins); a plugin that raises is named in a warning and left out."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

GROUPS = ("hpml.models", "hpml.datasets")

_loaded = False


class PluginWarning(UserWarning):
    """A plugin could not be loaded; hpml goes on without it."""


def load_plugins(groups: tuple[str, ...] = GROUPS) -> list[str]:
    """Import every plugin module of ``groups`` once per process (re-entrant); returns what it loaded."""
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
