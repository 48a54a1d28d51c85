"""Model registry: ``create_model(name, num_classes=..., **kw)`` and ``list_models()``.

Every model takes one input tensor and returns class logits, so the training step
never needs to know which model it drives:

* image models take ``float[B, 3, H, W]``;
* text models take ``int64[B, L]`` token ids (padding derived inside the model).

A name is either registered (hpml's own ``resnet18``, ``resnet50``, ``xlnet``, and what
plugins register through the ``hpml.models`` entry-point group, see
:mod:`hpml.plugins`) or ``SOURCE:NAME`` for an architecture built from code by another
library, with random weights and nothing fetched (:mod:`hpml.models.external`):

* ``torchvision:<builder>`` (``torchvision:mobilenet_v3_small``);
* ``timm:<name>`` (``timm:vit_small_patch16_224``; needs ``pip install -e '.[timm]'``);
* ``hf:<model_type>`` or ``hf:<path to a local config.json or its folder>``
  (``hf:bert``: ``BertForSequenceClassification(BertConfig(num_labels=...))``).

>>> import hpml
>>> model = hpml.create_model("resnet18", num_classes=10, image_size=32)
>>> sum(p.numel() for p in model.parameters())
11173962
>>> model_spec("xlnet").modality
'text'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.nn as nn

from hpml.errors import HpmlError
from hpml.registry import Registry

MODALITIES = ("image", "text")


@dataclass(frozen=True)
class ModelSpec:
    """A model by name: its factory, the input it takes and where it comes from.

    Calling the spec builds the model, so the registry still maps names to factories.
    """

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
    """Decorator registering ``factory(num_classes, **kw) -> nn.Module`` under ``name``.

    Image factories are called with ``image_size`` and ``weights``; text factories with
    ``preset``, ``vocab_size``, ``pad_id``, ``seq_len`` and ``weights``.
    """

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(name, ModelSpec(name, factory, modality, source))
        return factory

    return add


def model_spec(name: str) -> ModelSpec:
    """The spec of a registered name or of a ``SOURCE:NAME`` architecture.

    An unknown name is a one-line :class:`HpmlError` that says where it looked.
    """
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


#: Parameters a classification forward never uses, by attribute name: XLNet's mask
#: embedding (pre-training's two-stream attention) and its segment bias and embeddings
#: (hpml passes no token_type_ids), in hpml's ``xlnet`` and ``hf:xlnet`` alike.
UNUSED_IN_CLASSIFICATION = ("mask_emb", "r_s_bias", "seg_embed")


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build model ``name`` (registered or ``SOURCE:NAME``) with a ``num_classes``-way head."""
    return freeze_unused(model_spec(name)(num_classes=num_classes, **kwargs))


def freeze_unused(model: nn.Module) -> nn.Module:
    """Freeze :data:`UNUSED_IN_CLASSIFICATION`: they never get a gradient, and DDP's reducer
    would wait for one forever; frozen, DDP leaves them out, so no model pays for
    ``find_unused_parameters=True``'s graph walk every step.  They stay in the state_dict."""
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
    """A floor (bytes) on the activations training keeps per sample for backward, fp32.

    ResNet: the input, the stem's two 64-channel maps and the first stage's six (each
    block keeps at least its conv output, its ReLU output and its sum; ResNet-50's
    bottlenecks keep more), at full size with the CIFAR stem, at 1/2 (stem) and 1/4
    (first stage) with the ImageNet stem.  XLNet: one d_model-wide hidden state per
    token per layer.  A floor, not an estimate (tests/models checks it against what
    autograd saves): it refuses impossible sizes, never ones that might fit.
    """
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


# Importing the family modules registers their models.
from hpml.models import resnet, xlnet  # noqa: E402,F401

__all__ = [
    "MODELS", "ModelSpec", "register_model", "model_spec", "model_presets", "create_model", "freeze_unused", "list_models",
    "count_parameters", "activation_floor_bytes",
]
