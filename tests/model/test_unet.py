"""U-Net: shapes, gradients, input checks, fixed normalisation and channels_last."""

import pytest
import torch

from napari_amvlm.config import UNetConfig
from napari_amvlm.model.unet import UNet


def tiny(levels: int = 3, **kw) -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(base=4, levels=levels, **kw))


@pytest.mark.parametrize("levels,h,w", [(3, 16, 24), (1, 7, 5), (4, 24, 40)])
def test_output_shape(levels, h, w):
    model = tiny(levels)
    out = model(torch.rand(2, 3, h, w))
    assert out.shape == (2, 1, h, w)
    assert out.dtype == torch.float32


def test_default_config_at_224():
    model = UNet().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 1, 224, 224)
    assert len(model.encoders) == 4 and model.encoders[-1][0].out_channels == 16 * 2**3


def test_several_output_channels():
    model = tiny(out_channels=3)
    assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_gradients_reach_every_parameter():
    model = tiny(3).train()
    x = torch.rand(2, 3, 16, 16)
    y = (torch.rand(2, 1, 16, 16) > 0.5).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 34), (1, 3, 2, 2)])
def test_size_not_divisible_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny(3)(torch.rand(*shape))


@pytest.mark.parametrize("shape", [(1, 1, 16, 16), (3, 16, 16), (1, 4, 16, 16)])
def test_wrong_channels_or_rank_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\)"):
        tiny(3)(torch.rand(*shape))


def test_bad_normalisation_config():
    with pytest.raises(ValueError, match="mean has 3 values but in_channels is 1"):
        UNet(UNetConfig(in_channels=1))
    with pytest.raises(ValueError, match="std must be positive"):
        UNet(UNetConfig(std=(0.2, 0.0, 0.2)))
    UNet(UNetConfig(in_channels=1, mean=(0.5,), std=(0.25,)))  # one value per channel is fine


def test_normalisation_uses_config_mean_and_std():
    """Shifting the configured mean by d is the same as shifting the input by -d (before normalisation)."""
    a = tiny(2, mean=(0.5, 0.5, 0.5)).eval()
    b = tiny(2, mean=(0.25, 0.25, 0.25)).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(b(x - 0.25), a(x), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(a(x), b(x))
    assert "mean" not in a.state_dict() and "std" not in a.state_dict()


def test_channels_last_gives_the_same_logits():
    model = tiny(3).eval()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        ref = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_downsample_works_at_lower_resolution_and_returns_full_size_logits():
    torch.manual_seed(0)
    net = UNet(UNetConfig(base=4, levels=3, downsample=2)).eval()
    assert net.size_multiple == 8
    x = torch.rand(2, 3, 32, 48)
    y = net(x)
    assert y.shape == (2, 1, 32, 48)
    # the network sees the 2x2 block averages only: an image that differs inside blocks gives the same logits
    flat = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    assert torch.allclose(net(flat), y, atol=1e-5)
    with pytest.raises(ValueError, match="downsample 2"):
        net(torch.rand(1, 3, 36, 48))
    with pytest.raises(ValueError, match="downsample >= 1"):
        UNet(UNetConfig(downsample=0))
