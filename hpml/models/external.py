"""Architectures from other libraries by name (``torchvision:``, ``timm:``, ``hf:``), built from code
with random weights and a ``num_classes`` head, wrapped to hpml's one-tensor-in, logits-out signature.

Image models get the dataset's size when they take one; ``hf:`` gets its vocabulary, padding id and
positions, and the ``tiny`` preset shrinks any config to 2 layers of 64 units."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from hpml.errors import HpmlError, one_line_message
from hpml.models import ModelSpec
from hpml.models.weights import load_state_dict_file

SOURCES = ("torchvision", "timm", "hf")

#: Config attributes the ``tiny`` preset shrinks, by role, under each transformers family's names.
TINY: dict[str, tuple[tuple[str, ...], int]] = {
    "layers": (("num_hidden_layers", "n_layer", "n_layers", "num_layers"), 2),
    "hidden": (("hidden_size", "d_model", "n_embd", "dim"), 64),
    "heads": (("num_attention_heads", "n_head", "n_heads", "num_heads"), 2),
    "ffn": (("intermediate_size", "d_inner", "n_inner", "hidden_dim", "d_ff"), 128),
}


def resolve(name: str) -> ModelSpec:
    """The spec of ``SOURCE:NAME``; an unknown source or name is a one-line error."""
    source, _, arch = name.partition(":")
    resolvers: dict[str, Callable[[str, str], ModelSpec]] = {"torchvision": _torchvision, "timm": _timm, "hf": _hf}
    if source not in resolvers:
        raise HpmlError(f"unknown model source {source!r} in {name!r}; choose from {', '.join(SOURCES)}")
    if not arch:
        raise HpmlError(f"model {name!r} names no architecture after '{source}:'")
    return resolvers[source](name, arch)


# --- torchvision -------------------------------------------------------------------------


def _torchvision(name: str, arch: str) -> ModelSpec:
    import torchvision.models as tvm

    known = tvm.list_models()
    if arch not in known:
        raise HpmlError(
            f"unknown model {name!r}: torchvision.models.list_models() has no {arch!r} "
            f"(e.g. {', '.join(sorted(known)[:4])}, ...)"
        )

    def build(num_classes: int, image_size: int | None = None, weights: str | Path | None = None) -> nn.Module:
        builder = tvm.get_model_builder(arch)
        kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
        if image_size is not None and _builds_with(builder, "image_size", arch):
            kwargs["image_size"] = image_size
        try:
            model = builder(**kwargs)
        except (AssertionError, ValueError) as exc:  # torchvision checks the size with torch._assert
            raise HpmlError(f"model {name!r} cannot be built for {image_size} px inputs: {one_line_message(exc)}; "
                            "try another --image-size") from None
        return _with_weights(model, weights)

    return ModelSpec(name, build, "image", "torchvision")


def _builds_with(builder: Callable, arg: str, arch: str) -> bool:
    """Whether ``builder`` (or the model class it forwards ``**kwargs`` to) takes ``arg``."""
    if arg in inspect.signature(builder).parameters:
        return True
    module = inspect.getmodule(builder)
    for obj in vars(module).values() if module else ():
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__:
            if arg in inspect.signature(obj.__init__).parameters:
                return True
    return False


# --- timm ----------------------------------------------------------------------------------


def _timm(name: str, arch: str) -> ModelSpec:
    try:
        import timm
    except ImportError:
        raise HpmlError(f"model {name!r} needs timm, which is not installed: pip install -e '.[timm]'") from None
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('_')[0]}*")[:4]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise HpmlError(f"unknown model {name!r}: timm.is_model({arch!r}) is False{hint}")

    def build(num_classes: int, image_size: int | None = None, weights: str | Path | None = None) -> nn.Module:
        kwargs: dict[str, Any] = {"pretrained": False, "num_classes": num_classes}
        # Only models with a fixed input grid (ViT, Swin...) declare an input size; CNNs are size-agnostic.
        if image_size is not None:
            default = timm.get_pretrained_cfg(arch)
            if default is not None and tuple(getattr(default, "input_size", ())[-1:]) != (image_size,):
                kwargs["img_size"] = image_size
        try:
            model = timm.create_model(arch, **kwargs)
        except TypeError:  # a CNN: it takes any size, and no img_size argument
            kwargs.pop("img_size", None)
            model = timm.create_model(arch, **kwargs)
        return _with_weights(model, weights)

    return ModelSpec(name, build, "image", "timm")


# --- Hugging Face transformers ---------------------------------------------------------


class HFTextClassifier(nn.Module):
    """Token ids in, logits out; the attention mask is derived from ``pad_id``."""

    def __init__(self, net: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.net = net
        self.pad_id = pad_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_id).long()
        return self.net(input_ids=input_ids, attention_mask=mask).logits


class HFImageClassifier(nn.Module):
    """Pixels in, logits out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixel_values).logits


def hf_task_names() -> tuple[dict[str, str], dict[str, str]]:
    """transformers' ``model_type -> class name`` maps for sequence and image classification
    (private tables; tests/models/test_external.py fails when an upgrade moves them)."""
    from transformers.models.auto import modeling_auto

    return (
        dict(modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
        dict(modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES),
    )


def _hf_config(name: str, arch: str):
    from transformers import AutoConfig

    path = Path(arch).expanduser()
    if "/" in arch or arch.endswith(".json") or path.exists():
        if not path.exists():
            raise HpmlError(f"model {name!r}: no config file or folder at {path}")
        if _asks_for_custom_code(path):
            raise HpmlError(f"model {name!r}: {path} asks to run its own Python code (auto_map in its config); "
                            "hpml never runs code from a model folder")
        try:
            # never the custom code a config's auto_map names (transformers would prompt for it)
            return AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise HpmlError(f"model {name!r}: cannot read a transformers config from {path}: "
                            f"{one_line_message(exc)}") from None
    try:
        return AutoConfig.for_model(arch)
    except ValueError:
        raise HpmlError(
            f"unknown model {name!r}: transformers has no model type {arch!r} "
            "(AutoConfig.for_model; e.g. bert, distilbert, roberta, gpt2, vit), and no file or folder by that name"
        ) from None


def _asks_for_custom_code(path: Path) -> bool:
    """Whether an unknown model type's config names code to import (``auto_map``)."""
    import json

    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    file = path / "config.json" if path.is_dir() else path
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # unreadable: transformers' own error names it
    return isinstance(raw, dict) and bool(raw.get("auto_map")) and raw.get("model_type") not in CONFIG_MAPPING


def _hf(name: str, arch: str) -> ModelSpec:
    config = _hf_config(name, arch)
    text, image = hf_task_names()
    if config.model_type in text:
        modality = "text"
    elif config.model_type in image:
        modality = "image"
    else:
        raise HpmlError(
            f"model {name!r}: transformers has no sequence- or image-classification class for "
            f"model type {config.model_type!r}"
        )

    def build(
        num_classes: int,
        preset: str | None = None,
        vocab_size: int | None = None,
        pad_id: int = 0,
        seq_len: int | None = None,
        image_size: int | None = None,
        weights: str | Path | None = None,
    ) -> nn.Module:
        from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

        cfg = config.__class__.from_dict(config.to_dict())  # a fresh copy per model
        cfg.num_labels = num_classes
        if preset == "tiny":
            shrink(cfg)
        if modality == "text":
            if vocab_size is not None and hasattr(cfg, "vocab_size"):
                cfg.vocab_size = vocab_size
            cfg.pad_token_id = pad_id
            for attr in ("max_position_embeddings", "n_positions"):
                if seq_len is not None and getattr(cfg, attr, None) is not None:
                    try:
                        setattr(cfg, attr, max(getattr(cfg, attr), seq_len))
                    except NotImplementedError:  # XLNet's config: relative positions, no limit to raise
                        pass
            net = AutoModelForSequenceClassification.from_config(cfg, trust_remote_code=False)
            return _with_weights(HFTextClassifier(net, pad_id), weights)
        if image_size is not None and hasattr(cfg, "image_size"):
            cfg.image_size = image_size
        return _with_weights(HFImageClassifier(AutoModelForImageClassification.from_config(cfg, trust_remote_code=False)), weights)

    return ModelSpec(name, build, modality, "hf")


def shrink(cfg: Any) -> None:
    """The ``tiny`` preset: every size attribute ``cfg`` has (see :data:`TINY`) set small."""
    for names, value in TINY.values():
        for attr in names:
            if isinstance(getattr(cfg, attr, None), int):
                setattr(cfg, attr, value)


def _with_weights(model: nn.Module, weights: str | Path | None) -> nn.Module:
    if weights is not None:
        state = load_state_dict_file(weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or len(missing) == len(list(model.state_dict())):
            raise HpmlError(f"weights {weights} do not fit this model ({len(unexpected)} unexpected keys)")
    return model
