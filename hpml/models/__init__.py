"""Model registry: ``create_model(name, num_classes=..., **kw)``, ``model_spec`` and ``list_models()``.

Every model takes one tensor (images ``float[B, 3, H, W]``, text ``int64[B, L]`` ids) and returns logits,
so the step never knows which model it drives. ``SOURCE:NAME`` builds another library's (README, Your own model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.nn as nn

from hpml.errors import HpmlError
from hpml.registry import Registry

MODALITIES = ("image", "text")


@dataclass(frozen=True)
class ModelSpec:
    """A model by name: its factory, the input it takes and where it comes from."""

    name: str
    factory: Callable[..., nn.Module]
    modality: str = "image"  # image: float[B, 3, H, W]; text: int64[B, L] token ids
    source: str = "hpml"  # hpml | plugin | torchvision | timm | hf

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise HpmlError(f"model {self.name!r}: modality {self.modality!r}; choose from {', '.join(MODALITIES)}")

    def __call__(self, num_classes: int, **kwargs: Any) -> nn.Module:
        return self.factory(num_classes=num_classes, **kwargs)


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, *, modality: str = "image", source: str = "hpml") -> Callable:
    """Decorator registering ``factory(num_classes, **kw) -> nn.Module`` under ``name``
    (image kwargs: ``image_size``, ``weights``; text: ``preset``, ``vocab_size``, ``pad_id``, ``seq_len``, ``weights``)."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(name, ModelSpec(name, factory, modality, source))
        return factory

    return add


def model_spec(name: str) -> ModelSpec:
    """The spec of a registered name or a ``SOURCE:NAME`` architecture; else a one-line HpmlError."""
    from hpml.plugins import load_plugins

    load_plugins()
    if name in MODELS:
        return MODELS.get(name)
    if ":" in name:
        from hpml.models.external import resolve

        return resolve(name)
    from hpml.models.external import SOURCES

    raise HpmlError(
        f"unknown model {name!r}; registered: {', '.join(MODELS.names())}; "
        f"or name an architecture as SOURCE:NAME with SOURCE one of {', '.join(SOURCES)}"
    )


def model_presets(spec: ModelSpec) -> tuple[str, ...]:
    """The ``--model-preset`` values ``spec`` takes (none for image models)."""
    if spec.name == "xlnet":
        from hpml.models.xlnet import PRESETS

        return tuple(PRESETS)
    if spec.source == "hf" and spec.modality == "text":
        return ("tiny", "base")  # base: the config as transformers or your config.json has it
    return ()


#: Parameters a classification forward never uses: XLNet's mask embedding and its segment
#: parameters (hpml passes no token_type_ids), in ``xlnet`` and ``hf:xlnet`` alike.
UNUSED_IN_CLASSIFICATION = ("mask_emb", "r_s_bias", "seg_embed")


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build model ``name`` (registered or ``SOURCE:NAME``) with a ``num_classes``-way head."""
    return freeze_unused(model_spec(name)(num_classes=num_classes, **kwargs))


def freeze_unused(model: nn.Module) -> nn.Module:
    """Freeze :data:`UNUSED_IN_CLASSIFICATION`: DDP's reducer would wait forever for their gradients,
    and freezing them spares every model ``find_unused_parameters``' per-step graph walk."""
    for name, param in model.named_parameters():
        if name.rpartition(".")[2] in UNUSED_IN_CLASSIFICATION:
            param.requires_grad_(False)
    return model


def list_models() -> list[str]:
    """Registered model names (hpml's and plugins'); ``SOURCE:NAME`` architectures are open-ended."""
    from hpml.plugins import load_plugins

    load_plugins()
    return MODELS.names()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def activation_floor_bytes(name: str, *, image_size: int = 0, seq_len: int = 0, preset: str | None = None) -> int:
    """A floor (bytes) on the fp32 activations training keeps per sample: the input and the first
    stage's maps (ResNet), one hidden state per token per layer (XLNet). It refuses impossible sizes, never
    ones that might fit (tests/models checks it against what autograd saves)."""
    if name == "xlnet":
        shape = xlnet.PRESETS.get(preset or "base", xlnet.PRESETS["base"])
        return 4 * seq_len * shape["d_model"] * shape["n_layer"]
    if name not in ("resnet18", "resnet50"):
        # Another library's or a plugin's model: only its input is known for sure.
        return 4 * 3 * image_size**2 if image_size else 8 * seq_len
    if image_size <= resnet.CIFAR_STEM_MAX_SIZE:
        stem = stage = image_size
    else:
        stem, stage = image_size // 2, image_size // 4
    return 4 * (3 * image_size**2 + 2 * 64 * stem**2 + 6 * 64 * stage**2)


from hpml.models import resnet, xlnet  # noqa: E402,F401

__all__ = [
    "MODELS", "ModelSpec", "register_model", "model_spec", "model_presets", "create_model", "freeze_unused", "list_models",
    "count_parameters", "activation_floor_bytes",
]
