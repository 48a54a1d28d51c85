"""Model registry and parameter counts against the published architectures."""

from __future__ import annotations

import pytest
import torch

from hpml.errors import HpmlError
from hpml.models import (
    activation_floor_bytes, count_parameters, create_model, list_models, model_presets, model_spec, register_model,
)

from .test_memory_floor import saved_bytes

PUBLISHED = [
    # (name, kwargs, parameters): torchvision / kuangliu CIFAR ResNet-50 / xlnet-base-cased
    ("resnet50", dict(num_classes=1000, image_size=224), 25_557_032),
    ("resnet50", dict(num_classes=10, image_size=32), 23_520_842),
    ("xlnet", dict(num_classes=2, preset="base"), 117_310_466),
]


@pytest.mark.parametrize("name,kwargs,expected", PUBLISHED, ids=["resnet50-imagenet", "resnet50-cifar", "xlnet-base"])
def test_parameter_counts_match_published_architectures(name, kwargs, expected):
    assert count_parameters(create_model(name, **kwargs)) == expected


def test_registry_lists_every_model():
    assert {"resnet18", "resnet50", "xlnet"} <= set(list_models())


def test_duplicate_model_names_are_rejected():
    with pytest.raises(HpmlError, match="already registered"):
        register_model("resnet50")(lambda num_classes: None)


def test_unknown_model_lists_registered_names():
    with pytest.raises(HpmlError, match="unknown model 'vgg'; registered: .*resnet50"):
        create_model("vgg", num_classes=10)


@pytest.mark.parametrize("image_size,stem_stride", [(32, 1), (224, 2)])
def test_stem_follows_the_input_size(image_size, stem_stride):
    model = create_model("resnet18", num_classes=10, image_size=image_size)
    assert model.conv1.stride == (stem_stride, stem_stride)
    out = model.eval()(torch.randn(1, 3, image_size, image_size))
    assert out.shape == (1, 10)


def test_xlnet_takes_token_ids_and_masks_padding():
    model = create_model("xlnet", num_classes=3, preset="tiny", vocab_size=100, pad_id=0, dropout=0.0).eval()
    ids = torch.randint(1, 100, (2, 12))
    padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        out = model(ids)
        out_padded = model(padded)
    assert out.shape == (2, 3)
    # XLNet's summary token is the last one; with padding masked, extra right padding
    # changes the summary position, so only the shape and finiteness are comparable.
    assert torch.isfinite(out_padded).all()


def test_unknown_xlnet_preset_is_an_error():
    with pytest.raises(HpmlError, match="choose from tiny, base, large"):
        create_model("xlnet", num_classes=2, preset="huge")


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    source = create_model("resnet18", num_classes=1000, image_size=224)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    # fine-tuning on 10 classes: the head is re-initialized, the backbone is loaded
    model = create_model("resnet18", num_classes=10, image_size=224, weights=path)
    assert torch.equal(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert model.fc.out_features == 10


def test_xlnet_weights_load_from_a_save_pretrained_directory(tmp_path):
    source = create_model("xlnet", num_classes=2, preset="tiny", vocab_size=50)
    source.net.save_pretrained(tmp_path)
    model = create_model("xlnet", num_classes=2, preset="tiny", vocab_size=50, weights=tmp_path)
    for a, b in zip(source.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_missing_or_foreign_weights_give_one_line_errors(tmp_path):
    with pytest.raises(HpmlError, match="not found"):
        create_model("resnet18", num_classes=10, weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(HpmlError, match="cannot read pretrained weights") as corrupt:
        create_model("resnet18", num_classes=10, weights=bad)
    assert "weights_only" not in str(corrupt.value)  # never torch's advice to load it unsafely
    other = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, other)
    with pytest.raises(HpmlError, match="does not match this model"):
        create_model("resnet18", num_classes=10, weights=other)


def _small_input(spec, batch: int = 2) -> tuple[dict, torch.Tensor]:
    if spec.modality == "image":
        return dict(image_size=16), torch.randn(batch, 3, 16, 16)
    kwargs = dict(vocab_size=100, pad_id=0, seq_len=8)
    if "tiny" in model_presets(spec):
        kwargs["preset"] = "tiny"
    return kwargs, torch.randint(1, 100, (batch, 8))


@pytest.mark.parametrize("name", list_models())  # from the registry: a new model is tested without editing this
def test_every_registered_model_trains_on_its_modality_and_keeps_its_memory_floor(name):
    spec = model_spec(name)
    kwargs, x = _small_input(spec)
    model = create_model(name, num_classes=3, **kwargs)
    logits = model(x)
    assert logits.shape == (2, 3)
    logits.float().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert no_gradient(model) == []
    size = dict(image_size=16) if spec.modality == "image" else dict(seq_len=8, preset=kwargs.get("preset"))
    assert 2 * activation_floor_bytes(name, **size) <= saved_bytes(model, x)


def no_gradient(model: torch.nn.Module) -> list[str]:
    """Trainable parameters one backward left without a gradient: DDP's reducer would wait for them."""
    return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("name", ["hf:xlnet", "hf:bert", "hf:vit", "torchvision:resnet18"])
def test_every_trainable_parameter_of_other_libraries_models_gets_a_gradient(name):
    spec = model_spec(name)
    kwargs, x = _small_input(spec)
    model = create_model(name, num_classes=3, **{k: v for k, v in kwargs.items() if k != "preset"},
                         **({"preset": "tiny"} if spec.modality == "text" else {}))
    model(x).float().sum().backward()
    assert no_gradient(model) == []
    assert any(not p.requires_grad for p in model.parameters()) == (name == "hf:xlnet")  # only XLNet's are frozen
