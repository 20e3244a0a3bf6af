"""Segmentation losses against slow per-image, per-pixel Python loops."""

import math

import pytest
import torch

from napari_amvlm.losses.segmentation import balanced_bce, plain_bce, segmentation_loss, soft_dice_loss


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def pixels(t: torch.Tensor, b: int) -> list[float]:
    return [float(v) for v in t[b].reshape(-1)]


def ref_dice(logits, target, weight=None, eps=1.0) -> float:
    total = 0.0
    for b in range(logits.shape[0]):
        xs, ys = pixels(logits, b), pixels(target, b)
        ws = pixels(weight, b) if weight is not None else [1.0] * len(xs)
        inter = sum(w * sig(x) * y for x, y, w in zip(xs, ys, ws))
        sp = sum(w * sig(x) for x, w in zip(xs, ws))
        sy = sum(w * y for y, w in zip(ys, ws))
        total += 1 - (2 * inter + eps) / (sp + sy + eps)
    return total / logits.shape[0]


def ref_bce(logits, target, weight=None) -> float:
    total = 0.0
    for b in range(logits.shape[0]):
        xs, ys = pixels(logits, b), pixels(target, b)
        ws = pixels(weight, b) if weight is not None else [1.0] * len(xs)
        n_pos = sum(1 for y in ys if y > 0.5)
        n_neg = len(ys) - n_pos
        image = 0.0
        for x, y, w in zip(xs, ys, ws):
            p = sig(x)
            bce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
            if y > 0.5:
                c = (0.5 if n_neg else 1.0) / n_pos
            else:
                c = (0.5 if n_pos else 1.0) / n_neg
            image += w * c * bce
        total += image
    return total / logits.shape[0]


def ref_plain_bce(logits, target, weight=None) -> float:
    """Every pixel weighs 1 / N of its image, whatever its class."""
    total = 0.0
    for b in range(logits.shape[0]):
        xs, ys = pixels(logits, b), pixels(target, b)
        ws = pixels(weight, b) if weight is not None else [1.0] * len(xs)
        image = 0.0
        for x, y, w in zip(xs, ys, ws):
            p = sig(x)
            image += w * -(y * math.log(p) + (1 - y) * math.log(1 - p))
        total += image / len(xs)
    return total / logits.shape[0]


REF_BCE = {"plain": ref_plain_bce, "balanced": ref_bce}


@pytest.fixture
def batch():
    """Three 5x6 images: mixed labels, all foreground, all background; plus confidence weights."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 5, 6, generator=g) * 3
    target = (torch.rand(3, 1, 5, 6, generator=g) > 0.7).float()
    target[1] = 1.0
    target[2] = 0.0
    weight = torch.rand(3, 1, 5, 6, generator=g)
    return logits, target, weight


@pytest.mark.parametrize("weighted", [False, True])
def test_dice_matches_loop(batch, weighted):
    logits, target, weight = batch
    w = weight if weighted else None
    assert float(soft_dice_loss(logits, target, w)) == pytest.approx(ref_dice(logits, target, w), abs=1e-5)
    assert float(soft_dice_loss(logits, target, w, eps=1e-3)) == pytest.approx(
        ref_dice(logits, target, w, eps=1e-3), abs=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_balanced_bce_matches_loop(batch, weighted):
    logits, target, weight = batch
    w = weight if weighted else None
    assert float(balanced_bce(logits, target, w)) == pytest.approx(ref_bce(logits, target, w), abs=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_plain_bce_matches_loop(batch, weighted):
    logits, target, weight = batch
    w = weight if weighted else None
    assert float(plain_bce(logits, target, w)) == pytest.approx(ref_plain_bce(logits, target, w), abs=1e-5)


def test_plain_bce_weighs_every_pixel_alike():
    """One positive among 99 negatives: missing it costs 1/99 of missing every negative (balanced: the same)."""
    target = torch.zeros(1, 1, 10, 10)
    target[0, 0, 3, 4] = 1.0
    miss_pos = torch.where(target > 0, -5.0, -5.0)
    miss_neg = torch.where(target > 0, 5.0, 5.0)
    ratio = float(plain_bce(miss_neg, target)) / float(plain_bce(miss_pos, target))
    wrong, right = math.log1p(math.exp(5.0)), math.log1p(math.exp(-5.0))  # bce of a pixel missed / hit at |x|=5
    assert ratio == pytest.approx((99 * wrong + right) / (wrong + 99 * right), rel=1e-6)
    assert ratio > 20


def test_default_bce_is_plain(batch):
    logits, target, _ = batch
    out = segmentation_loss(logits, target)
    assert float(out["bce"]) == pytest.approx(ref_plain_bce(logits, target), abs=1e-5)
    with pytest.raises(ValueError, match="bce must be one of"):
        segmentation_loss(logits, target, bce="focal")


@pytest.mark.parametrize("kind", ["plain", "balanced"])
def test_total_is_the_half_half_sum(batch, kind):
    logits, target, weight = batch
    out = segmentation_loss(logits, target, weight, bce=kind)
    assert set(out) == {"dice", "bce", "loss"}
    assert float(out["dice"]) == pytest.approx(ref_dice(logits, target, weight), abs=1e-5)
    assert float(out["bce"]) == pytest.approx(REF_BCE[kind](logits, target, weight), abs=1e-5)
    assert float(out["loss"]) == pytest.approx(0.5 * float(out["dice"]) + 0.5 * float(out["bce"]), abs=1e-6)


def test_classes_are_balanced():
    """One positive among 99 negatives: a constant logit 0 gives log 2 whatever the imbalance."""
    target = torch.zeros(1, 1, 10, 10)
    target[0, 0, 3, 4] = 1.0
    assert float(balanced_bce(torch.zeros(1, 1, 10, 10), target)) == pytest.approx(math.log(2), abs=1e-6)
    # missing the single positive costs as much as missing all 99 negatives
    miss_pos = torch.where(target > 0, -5.0, -5.0)
    miss_neg = torch.where(target > 0, 5.0, 5.0)
    assert float(balanced_bce(miss_pos, target)) == pytest.approx(float(balanced_bce(miss_neg, target)), rel=1e-6)


def test_perfect_prediction_has_low_loss_and_gradients_flow(batch):
    _, target, _ = batch
    logits = ((target * 2 - 1) * 20).requires_grad_(True)
    out = segmentation_loss(logits, target)
    assert float(out["bce"]) < 1e-6 and float(out["dice"]) < 0.05
    bad = (-(target * 2 - 1) * 3).requires_grad_(True)
    loss = segmentation_loss(bad, target)["loss"]
    loss.backward()
    assert torch.isfinite(bad.grad).all() and bad.grad.abs().sum() > 0
    assert float(loss) > float(out["loss"]) + 0.5


def test_zero_confidence_gives_zero_loss(batch):
    logits, target, _ = batch
    zero = torch.zeros_like(target)
    assert float(balanced_bce(logits, target, zero)) == 0.0
    assert float(soft_dice_loss(logits, target, zero)) == 0.0  # (0 + eps) / (0 + eps)


@pytest.mark.parametrize("fn", [soft_dice_loss, balanced_bce, plain_bce, segmentation_loss])
def test_shape_errors(fn):
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, 1, H, W\)"):
        fn(torch.zeros(2, 2, 4, 4), torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"logits must have shape"):
        fn(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="target shape"):
        fn(x, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="weight shape"):
        fn(x, x, torch.ones(2, 1, 4, 5))
