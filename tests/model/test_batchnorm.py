"""BatchNorm statistics re-estimated from images: the formula (mean and variance of what reaches each layer,
blended with the old statistics), nothing changed without images or on an error."""

import pytest
import torch
from torch import nn

from napari_amvlm.model.batchnorm import reestimate_batchnorm


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2))
    net[1].running_mean.fill_(5.0)
    net[1].running_var.fill_(9.0)
    return net


def _features(net, batches):
    f = torch.cat([net[0](b) for b in batches])  # what the BatchNorm layer sees
    return f.mean(dim=(0, 2, 3)), f.var(dim=(0, 2, 3), unbiased=True)


@pytest.mark.parametrize("blend", [1.0, 0.5])
def test_statistics_are_the_images_blended_with_the_old(blend):
    net = _net()
    g = torch.Generator().manual_seed(1)
    batches = [3.0 + 2.0 * torch.randn(4, 1, 8, 8, generator=g) for _ in range(3)]  # equal sizes: plain average
    with torch.no_grad():
        mean, _ = _features(net, batches)
        per_batch_var = torch.stack([_features(net, [b])[1] for b in batches]).mean(0)
    assert reestimate_batchnorm(net, iter(batches), blend) == 12
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, blend * mean + (1 - blend) * 5.0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, blend * per_batch_var + (1 - blend) * 9.0, rtol=1e-5, atol=1e-5)
    assert not bn.training and bn.momentum == 0.1  # back to inference and to its own momentum


def test_no_images_or_an_error_changes_nothing():
    net = _net()
    assert reestimate_batchnorm(net, iter([])) == 0
    assert torch.all(net[1].running_mean == 5.0) and torch.all(net[1].running_var == 9.0)

    def broken():
        yield torch.randn(2, 1, 4, 4)
        raise OSError("unreadable image")

    with pytest.raises(OSError):
        reestimate_batchnorm(net, broken())
    assert torch.all(net[1].running_mean == 5.0) and torch.all(net[1].running_var == 9.0)
    with pytest.raises(ValueError):
        reestimate_batchnorm(net, iter([]), blend=1.5)
