"""Architectures from torchvision, timm and transformers by name (hpml.models.external)."""

from __future__ import annotations

import sys

import pytest
import torch

from hpml.errors import HpmlError
from hpml.measure.flops import flops_per_sample
from hpml.models import count_parameters, create_model, model_spec
from hpml.models.external import hf_task_names, shrink
from hpml.train.run_config import RunConfig


IMAGE = torch.randn(2, 3, 32, 32)
TOKENS = torch.randint(1, 100, (2, 24))

CASES = [
    # (name, kwargs, input, modality)
    ("torchvision:mobilenet_v3_small", dict(image_size=32), IMAGE, "image"),
    ("torchvision:vit_b_16", dict(image_size=32), IMAGE, "image"),  # a fixed-grid model: gets the image size
    ("hf:bert", dict(preset="tiny", vocab_size=100, pad_id=0, seq_len=24), TOKENS, "text"),
    ("hf:distilbert", dict(preset="tiny", vocab_size=100, pad_id=0, seq_len=24), TOKENS, "text"),
    ("hf:vit", dict(preset="tiny", image_size=32), IMAGE, "image"),
]
TIMM_CASES = [
    ("timm:resnet18", dict(image_size=32), IMAGE, "image"),
    ("timm:vit_tiny_patch16_224", dict(image_size=32), IMAGE, "image"),
]


def _has_timm() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


needs_timm = pytest.mark.skipif(not _has_timm(), reason="timm is an optional extra: pip install -e '.[timm]'")


@pytest.mark.parametrize(
    "name,kwargs,x,modality",
    CASES + [pytest.param(*c, marks=needs_timm) for c in TIMM_CASES],
    ids=[c[0] for c in CASES + TIMM_CASES],
)
def test_named_architectures_build_with_the_head_and_input_asked_for(name, kwargs, x, modality):
    assert model_spec(name).modality == modality
    model = create_model(name, num_classes=7, **kwargs).eval()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 7)
    assert flops_per_sample(model, x) > 0  # batch 2: BatchNorm on a 1x1 map needs it


def test_tiny_preset_shrinks_a_transformers_config():
    base = create_model("hf:bert", num_classes=2, vocab_size=100, seq_len=16)
    tiny = create_model("hf:bert", num_classes=2, preset="tiny", vocab_size=100, seq_len=16)
    assert count_parameters(tiny) < count_parameters(base) / 20
    assert tiny.net.config.num_hidden_layers == 2 and tiny.net.config.hidden_size == 64


def test_text_model_gets_the_vocabulary_padding_and_positions():
    model = create_model("hf:bert", num_classes=3, preset="tiny", vocab_size=123, pad_id=5, seq_len=1000)
    cfg = model.net.config
    assert (cfg.vocab_size, cfg.pad_token_id, cfg.num_labels) == (123, 5, 3)
    assert cfg.max_position_embeddings >= 1000
    with torch.no_grad():
        assert model.eval()(torch.randint(6, 123, (1, 1000))).shape == (1, 3)


def test_padding_is_masked():
    model = create_model("hf:bert", num_classes=2, preset="tiny", vocab_size=50, pad_id=0, seq_len=8).eval()
    ids = torch.tensor([[0, 0, 0, 7, 8, 9, 10, 11]])
    other_padding_content = ids.clone()
    with torch.no_grad():
        a = model(ids)
        model.pad_id = 1  # now position 0..2 (id 0) count as tokens: the logits must change
        b = model(other_padding_content)
    assert not torch.allclose(a, b)


def test_a_local_config_file_is_read(tmp_path):
    from transformers import BertConfig

    BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    for name in (f"hf:{tmp_path}", f"hf:{tmp_path / 'config.json'}"):
        model = create_model(name, num_classes=4, vocab_size=60, seq_len=8)
        assert model.net.config.num_hidden_layers == 1 and model.net.config.num_labels == 4


@pytest.mark.parametrize("name,message", [
    ("foo:bar", "unknown model source 'foo' in 'foo:bar'; choose from torchvision, timm, hf"),
    ("torchvision:nope", r"torchvision\.models\.list_models\(\) has no .nope."),
    ("hf:nope", "transformers has no model type 'nope'"),
    ("hf:/no/such/config.json", "no config file or folder at /no/such/config.json"),
    ("hf:", "names no architecture"),
    ("vgg", "unknown model 'vgg'; registered: .*or name an architecture as SOURCE:NAME"),
])
def test_names_that_do_not_resolve_say_where_they_looked(name, message):
    with pytest.raises(HpmlError, match=message) as err:
        model_spec(name)
    assert "\n" not in str(err.value)


def test_missing_timm_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(HpmlError, match=r"needs timm, which is not installed: pip install -e '\.\[timm\]'"):
        model_spec("timm:resnet18")


@needs_timm
def test_unknown_timm_name():
    with pytest.raises(HpmlError, match=r"timm.is_model\('nope'\) is False"):
        model_spec("timm:nope")


@pytest.mark.parametrize("model,dataset", [("hf:bert", "digits"), ("torchvision:resnet18", "amazon_polarity")])
def test_a_model_whose_input_does_not_fit_the_dataset_is_refused(model, dataset):
    with pytest.raises(HpmlError, match="cannot train on"):
        RunConfig(model=model, dataset=dataset, device="cpu", synthetic=True)


def test_transformers_task_tables_are_where_hpml_reads_them():
    """hpml reads transformers' auto-class tables in one place; an upgrade that moves them fails here."""
    text, image = hf_task_names()
    assert text["bert"] == "BertForSequenceClassification"
    assert image["vit"] == "ViTForImageClassification"


def test_shrink_touches_only_size_attributes():
    from transformers import BertConfig

    cfg = BertConfig()
    shrink(cfg)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (2, 64, 2, 128)
    assert cfg.vocab_size == BertConfig().vocab_size
