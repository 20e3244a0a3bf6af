"""Vision towers: the hybrid U-Net stem, and loading a trained U-Net's encoder into it."""

from __future__ import annotations

import pytest
import torch

from napari_amvlm.config import UNetConfig, VisionConfig
from napari_amvlm.model.unet import UNet
from napari_amvlm.model.vision import UNetStem, VisionEncoder, load_unet_stem


def hybrid(**kw) -> VisionConfig:
    return VisionConfig(image_size=64, patch_size=16, width=24, depth=1, heads=2, unet_stem=True, stem_base=4, **kw)


def test_hybrid_tower_gives_cls_and_one_token_per_patch():
    torch.manual_seed(0)
    enc = VisionEncoder(hybrid()).eval()
    assert isinstance(enc.stem, UNetStem) and len(enc.stem.encoders) == 4  # 32 -> 16 -> 8 -> 4 = 64 / 16
    out = enc(torch.rand(2, 3, 64, 64))
    assert out.cls.shape == (2, 24) and out.patches.shape == (2, 16, 24) and out.grid == (4, 4)


def test_stem_loads_a_trained_unet_encoder_and_computes_its_features():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(base=4, levels=5, downsample=2)).eval()
    for p in unet.parameters():
        p.data.normal_()  # "trained": far from a fresh initialisation
    enc = VisionEncoder(hybrid()).eval()
    assert load_unet_stem(enc, unet.state_dict(), "u") == sum(1 for k in unet.state_dict() if
                                                                k.startswith(("encoders.0.", "encoders.1.",
                                                                              "encoders.2.", "encoders.3.")))
    x = torch.rand(1, 3, 64, 64)
    h = torch.nn.functional.avg_pool2d((x - unet.mean) / unet.std, 2)
    for level in range(4):
        h = unet.encoders[level](h if level == 0 else torch.nn.functional.max_pool2d(h, 2))
    with torch.no_grad():
        feats = enc.stem.encoders[0](torch.nn.functional.avg_pool2d((x - enc.mean) / enc.std, 2))
        for level in range(1, 4):
            feats = enc.stem.encoders[level](torch.nn.functional.max_pool2d(feats, 2))
    assert torch.allclose(feats, h, atol=1e-5)


def test_stem_refuses_a_unet_that_does_not_fit():
    enc = VisionEncoder(hybrid())
    with pytest.raises(ValueError, match="does not fit the stem"):
        load_unet_stem(enc, UNet(UNetConfig(base=8, levels=5)).state_dict(), "wide.safetensors")
    with pytest.raises(ValueError, match="no U-Net stem"):
        load_unet_stem(VisionEncoder(VisionConfig(image_size=64, patch_size=16, width=24, depth=1, heads=2)),
                       UNet(UNetConfig(base=4)).state_dict(), "u")


def test_stem_config_is_checked():
    from napari_amvlm.config import AMVLMConfig

    with pytest.raises(ValueError, match="power of 2"):
        AMVLMConfig(vision=hybrid(stem_downsample=3)).validate()


def test_sincos_codes_follow_the_formula_and_tell_every_patch_apart():
    from napari_amvlm.model.vision import sincos_2d

    codes = sincos_2d(4, 8)  # quarter = 2: w = (1, 1/100)
    assert codes.shape == (16, 8)
    row, col = 2, 3  # patch 2 * 4 + 3
    w = torch.tensor([1.0, 0.01])
    expected = torch.cat([torch.sin(row * w), torch.cos(row * w), torch.sin(col * w), torch.cos(col * w)])
    assert torch.allclose(codes[11], expected, atol=1e-6)
    assert torch.cdist(codes, codes).add(torch.eye(16)).min() > 0.1  # no two patches share a code
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(4, 6)


def test_sincos_codes_reach_the_tokens_only_when_asked_and_are_not_stored():
    torch.manual_seed(0)
    plain, coded = VisionEncoder(hybrid()).eval(), VisionEncoder(hybrid(pos_sincos=True)).eval()
    coded.load_state_dict(plain.state_dict())  # same keys: old model folders load either way
    assert "pos_fixed" not in coded.state_dict() and not plain.pos_fixed.any()
    x = torch.rand(1, 3, 64, 64)
    a, b = plain(x), coded(x)
    assert not torch.allclose(a.cls, b.cls)
    assert coded.pos_fixed[0, 0].abs().sum() == 0 and coded.pos_fixed[0, 1:].abs().mean() > 0.5
