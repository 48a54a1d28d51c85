"""Loading user-supplied pretrained weights from local files (never from a hub)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn as nn

from hpml.errors import HpmlError, one_line_message, refused_global, unpickling_reason


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pt``/``.pth``/``.bin`` (torch) or ``.safetensors`` state dict."""
    path = Path(path)
    if not path.is_file():
        raise HpmlError(f"pretrained weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if refused_global(exc) is None:  # not a refused global: a corrupt or foreign file
            raise HpmlError(f"cannot read pretrained weights {path}: {unpickling_reason(exc)}") from None
        raise HpmlError(f"pretrained weights {path} refer to {refused_global(exc)}, which a state dict never "
                        "holds; not loading them (they could run code)") from None
    except Exception as exc:  # corrupt or foreign file: name it, don't dump a traceback
        raise HpmlError(f"cannot read pretrained weights {path}: {one_line_message(exc)}") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # an hpml checkpoint
    if not isinstance(state, dict):
        raise HpmlError(f"{path} does not hold a state dict")
    return state


def load_backbone(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``model``, skipping tensors whose shapes differ (a new head or stem);
    a missing or unknown name is an error: the file is another architecture's."""
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise HpmlError(
            f"{path} does not match this model: unexpected keys such as {unknown[:3]}"
        )
    compatible = {k: v for k, v in state.items() if own[k].shape == v.shape}
    missing = set(own) - set(state)
    if missing:
        raise HpmlError(f"{path} does not match this model: missing keys such as {sorted(missing)[:3]}")
    model.load_state_dict(compatible, strict=False)
