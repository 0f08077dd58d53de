"""The unified one-head model: structure checked by code, outputs, backbone weights."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
import torch
import torchvision
from torch import nn

from cl_bench.config import ModelConfig
from cl_bench.errors import CLBenchError
from cl_bench.model import backbones, build_model
from cl_bench.model.backbones import BACKBONES, build_backbone
from cl_bench.model.unified import UnifiedHead, head_layer_count, is_single_branch
from cl_bench.tasks import build_tasks
from tests.http_fixture import FileServer

CLASSES = {"seg": [f"s{i}" for i in range(21)], "det": [f"d{i}" for i in range(10)],
           "cls": [f"c{i}" for i in range(10)]}


def model(**overrides) -> nn.Module:
    return build_model(ModelConfig(**overrides), CLASSES, build_tasks())


@pytest.mark.parametrize("neck", ["fpn", "convbnrelu"])
def test_one_head_output_carries_every_task(neck):
    m = model(neck=neck).eval()
    x = torch.randn(2, 3, 64, 96)
    out = m(x)
    assert out["det"].shape == (2, 5 + 10, 4, 6)
    assert out["seg"].shape == (2, 21, 64 // 4, 96 // 4)  # upsampled to input / tasks.seg.output_stride (4)
    assert out["cls"].shape == (2, 10)
    raw = m.forward_raw(x)
    assert raw.shape == (2, 15 + 21 + 10, 4, 6)
    assert torch.equal(out["det"], raw[:, :15])  # a view of the one tensor, det first
    assert torch.allclose(out["cls"], raw[:, 36:].mean(dim=(2, 3)))


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_fits_the_rules(backbone):
    m = model(backbone=backbone)
    counts = m.parameter_counts()
    assert counts["total"] < 8_000_000
    assert counts["total"] == sum(p.numel() for p in m.parameters())
    assert head_layer_count(m.head) == 3 and is_single_branch(m.head)


def test_head_layers_are_counted_by_code():
    assert head_layer_count(model(head_layers=2).head) == 2
    with pytest.raises(CLBenchError, match="exactly 2 or 3 layers"):
        model(head_layers=4)


def test_a_two_branch_head_is_detected():
    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.a(x), self.b(x)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            return x + self.a(x)

    assert is_single_branch(UnifiedHead(8, 8, 4, 3))
    assert not is_single_branch(TwoBranch())
    assert not is_single_branch(Residual())


def test_objectness_starts_at_a_low_prior_and_boxes_small():
    m = model().eval()
    det = m(torch.randn(1, 3, 64, 64))["det"].sigmoid()
    assert det[:, 4].mean() < 0.1
    assert 0.05 < det[:, 2:4].mean() < 0.2  # box width and height: a tenth of the input, not half


def test_batchnorm_momentum_is_configurable():
    m = model(bn_momentum=0.05)
    assert {mod.momentum for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)} == {0.05}


# ---- backbone weights -------------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v2"])
def test_shared_imagenet_files_load(shared_weights, name):
    by_folder = build_backbone(name, str(shared_weights))
    reference = BACKBONES[name].constructor()
    file = next(p for p in shared_weights.iterdir() if p.name.startswith(name))
    reference.load_state_dict(torch.load(file, weights_only=True))
    assert torch.equal(by_folder.stage16[0][0].weight, reference.features[0][0].weight)


def test_wrong_and_corrupt_weight_files_are_one_line_errors(tmp_path):
    wrong = tmp_path / "v2.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), wrong)
    with pytest.raises(CLBenchError, match=f"{wrong}: not mobilenet_v3_small weights"):
        build_backbone("mobilenet_v3_small", str(wrong))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CLBenchError, match=f"{corrupt}: not a loadable weights file"):
        build_backbone("mobilenet_v3_small", str(corrupt))
    with pytest.raises(CLBenchError, match="backbone weights file not found"):
        build_backbone("mobilenet_v3_small", str(tmp_path / "missing.pth"))


def test_imagenet_weights_download_through_torch_hub(tmp_path, monkeypatch):
    reference = torchvision.models.mobilenet_v3_small()
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    payload = buffer.getvalue()
    name = f"mobilenet_v3_small-{hashlib.sha256(payload).hexdigest()[:8]}.pth"  # torch.hub checks this prefix
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with FileServer({name: payload}) as server:
        monkeypatch.setattr(backbones, "imagenet_url", lambda _: server.url(name))
        loaded = build_backbone("mobilenet_v3_small", "imagenet")
    assert torch.equal(loaded.stage16[0][0].weight, reference.features[0][0].weight)
    assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()  # cached for next time


def test_offline_imagenet_download_fails_fast_naming_both_options(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(backbones, "imagenet_url", lambda _: f"http://127.0.0.1:{port}/mobilenet_v3_small-00000000.pth")
    start = time.perf_counter()
    with pytest.raises(CLBenchError) as caught:
        build_backbone("mobilenet_v3_small", "imagenet")
    assert time.perf_counter() - start < 10
    message = str(caught.value)
    assert "cannot download ImageNet weights" in message and "--backbone-weights FILE" in message
    assert "go online" in message and "\n" not in message
