"""Where pretrained cases find the user's weights: fixed names per model in one directory (README, Convergence).
XLNet's reviews use its own ``spiece.model``: pretrained embeddings mean nothing under another vocabulary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_ENV = "HPML_WEIGHTS_DIR"

#: model -> accepted names under the weights directory, first match wins.
WEIGHT_FILES: dict[str, tuple[str, ...]] = {
    "resnet50": ("resnet50.pth", "resnet50.pt", "resnet50.safetensors"),
    "xlnet": ("xlnet-base-cased",),
}
#: HF weight files, one of which a ``save_pretrained`` XLNet directory must hold.
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Weights:
    """Resolved weights for a model: the path for ``RunConfig.weights`` and, for text, its tokenizer."""

    path: Path
    tokenizer: Path | None = None


def weights_dir(option: str | None) -> Path | None:
    """``--hpml-weights`` if given, else ``$HPML_WEIGHTS_DIR``, else None."""
    value = option or os.environ.get(WEIGHTS_ENV)
    return Path(value).expanduser() if value else None


def expected(model: str) -> str:
    names = WEIGHT_FILES.get(model, ())
    if model == "xlnet":
        return f"{names[0]}/{{config.json, {' or '.join(_HF_WEIGHTS)}, spiece.model}}"
    return " or ".join(names)


def find_weights(model: str, directory: Path | None) -> tuple[Weights | None, str | None]:
    """``(weights, None)`` when usable files are there, else ``(None, reason)`` naming the expected files."""
    how = f"pass --hpml-weights DIR or set ${WEIGHTS_ENV}"
    if model not in WEIGHT_FILES:
        return None, f"no pretrained weights are defined for model {model!r} (known: {', '.join(WEIGHT_FILES)})"
    if directory is None:
        return None, f"needs pretrained {model} weights: {how} (a directory holding {expected(model)})"
    for name in WEIGHT_FILES[model]:
        path = directory / name
        if model == "xlnet" and path.is_dir():
            missing = [n for n in ("config.json", "spiece.model") if not (path / n).is_file()]
            if not any((path / n).is_file() for n in _HF_WEIGHTS):
                missing.append(" or ".join(_HF_WEIGHTS))
            if missing:
                return None, f"{path} lacks {', '.join(missing)} (expected {expected(model)})"
            return Weights(path, path / "spiece.model"), None
        if model != "xlnet" and path.is_file():
            return Weights(path), None
    return None, f"needs pretrained {model} weights: {directory} holds none of {expected(model)} ({how})"
