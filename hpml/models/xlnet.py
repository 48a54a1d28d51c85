"""XLNet for sequence classification from ``transformers.XLNetConfig``; weights random or from a local file or folder."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from hpml.errors import HpmlError, one_line_message
from hpml.models import register_model
from hpml.models.weights import load_backbone, load_state_dict_file

#: Architecture presets. ``base``/``large`` are the published xlnet-*-cased shapes.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(d_model=64, n_layer=2, n_head=2, d_inner=128, vocab_size=32000),
    "base": dict(d_model=768, n_layer=12, n_head=12, d_inner=3072, vocab_size=32000),
    "large": dict(d_model=1024, n_layer=24, n_head=16, d_inner=4096, vocab_size=32000),
}


class XLNetClassifier(nn.Module):
    """``XLNetForSequenceClassification`` taking token ids (mask derived from ``pad_id``) and returning logits."""

    def __init__(self, net: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.net = net
        self.pad_id = pad_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_id).to(self.net.dtype)
        return self.net(input_ids=input_ids, attention_mask=mask).logits


@register_model("xlnet", modality="text")
def xlnet(
    num_classes: int,
    preset: str = "base",
    vocab_size: int | None = None,
    pad_id: int = 0,
    dropout: float = 0.1,
    weights: str | Path | None = None,
    seq_len: int | None = None,  # unused: XLNet's relative positions take any length
) -> nn.Module:
    """XLNet classifier; ``preset`` one of tiny/base/large (base: 117,310,466 params, 2 labels)."""
    from transformers import XLNetConfig, XLNetForSequenceClassification
    from transformers.utils import logging as hf_logging

    if preset not in PRESETS:
        raise HpmlError(f"unknown xlnet preset {preset!r}; choose from {', '.join(PRESETS)}")
    shape = dict(PRESETS[preset])
    if vocab_size is not None:
        shape["vocab_size"] = vocab_size
    config = XLNetConfig(num_labels=num_classes, dropout=dropout, pad_token_id=pad_id, **shape)
    if weights is not None and Path(weights).is_dir():
        hf_logging.set_verbosity_error()  # the new classifier head is expected to be missing
        try:
            net = XLNetForSequenceClassification.from_pretrained(
                str(weights), num_labels=num_classes, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise HpmlError(f"cannot load XLNet weights from {weights}: {one_line_message(exc)}") from exc
    else:
        net = XLNetForSequenceClassification(config)
        if weights is not None:
            load_backbone(net, load_state_dict_file(weights), weights)
    return XLNetClassifier(net, pad_id)
