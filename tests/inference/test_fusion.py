"""Fusion of teacher probability and text mask: maths against a per-pixel reference, and why not σ(P + T)."""

import math

import pytest
import torch

from napari_amvlm.inference.fusion import confidence, fuse, pseudo_label


def ref_pixel(p: float, t: float, lam: float, th: float) -> tuple[float, float, float]:
    """(fused, label, weight) for one pixel, written out by hand."""
    y = lam * t + (1 - lam) * p
    label = 1.0 if y > th else 0.0
    weight = (y - th) / (1 - th) if y > th else (th - y) / th
    return y, label, weight


@pytest.mark.parametrize("lam,th", [(0.5, 0.5), (0.3, 0.5), (1.0, 0.5), (0.0, 0.5), (0.5, 0.7)])
def test_matches_per_pixel_reference(lam, th):
    g = torch.Generator().manual_seed(1)
    p = torch.rand(2, 1, 4, 5, generator=g)
    t = torch.rand(2, 1, 4, 5, generator=g)
    fused = fuse(p, t, lam)
    label, weight = pseudo_label(p, t, lam, th)
    assert fused.shape == label.shape == weight.shape == p.shape
    for i, (pv, tv) in enumerate(zip(p.reshape(-1).tolist(), t.reshape(-1).tolist())):
        y, lab, w = ref_pixel(pv, tv, lam, th)
        assert float(fused.reshape(-1)[i]) == pytest.approx(y, abs=1e-6)
        assert float(label.reshape(-1)[i]) == lab
        assert float(weight.reshape(-1)[i]) == pytest.approx(w, abs=1e-6)


def test_default_confidence_is_abs_2y_minus_1():
    y = torch.linspace(0, 1, 101)
    torch.testing.assert_close(confidence(y), (2 * y - 1).abs(), rtol=0, atol=1e-7)
    _, w = pseudo_label(y, y)
    torch.testing.assert_close(w, (2 * y - 1).abs(), rtol=0, atol=1e-7)


def test_agreement_and_disagreement():
    p = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.9])
    t = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.8])
    label, weight = pseudo_label(p, t)
    assert fuse(p, t).tolist() == pytest.approx([0.0, 1.0, 0.5, 0.5, 0.85])
    assert label.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    assert weight.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.7])
    assert label.dtype == p.dtype


def test_released_sigmoid_of_sum_separates_nothing():
    """Ours maps (0, 0) -> 0 and (1, 1) -> 1; σ(P + T) maps them to 0.5 and 0.881 and keeps every pixel >= 0.5."""
    p = torch.tensor([0.0, 1.0])
    t = torch.tensor([0.0, 1.0])
    assert fuse(p, t).tolist() == [0.0, 1.0]
    released = torch.sigmoid(p + t)
    assert float(released[0]) == 0.5 and float(released[1]) == pytest.approx(1 / (1 + math.exp(-2)))
    grid = torch.linspace(0, 1, 21)
    pp, tt = torch.meshgrid(grid, grid, indexing="ij")
    released = torch.sigmoid(pp + tt)
    assert float(released.min()) >= 0.5 and float(released.max()) < 0.9
    # both sources say "background" (0.1): the released rule still calls it foreground, ours does not
    bg = torch.full((3,), 0.1)
    assert bool((torch.sigmoid(bg + bg) > 0.5).all())
    assert pseudo_label(bg, bg)[0].sum() == 0
    ours = fuse(pp, tt)
    assert float(ours.min()) == 0.0 and float(ours.max()) == 1.0


def test_bad_inputs_are_clear_errors():
    p = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        fuse(p, torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"text_prob must hold probabilities in \[0, 1\]"):
        fuse(p, p * 3)
    with pytest.raises(ValueError, match="teacher_prob must hold probabilities"):
        fuse(p - 2, p)
    with pytest.raises(ValueError, match="probabilities"):
        fuse(torch.full_like(p, float("nan")), p)
    with pytest.raises(ValueError, match="lam"):
        fuse(p, p, lam=1.5)
    with pytest.raises(ValueError, match="threshold"):
        pseudo_label(p, p, threshold=1.0)
    with pytest.raises(TypeError, match="floating-point"):
        fuse(torch.ones(2, dtype=torch.long), torch.ones(2, dtype=torch.long))
