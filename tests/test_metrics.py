"""Dice / IoU against hand counts, and the paired t-test against its closed form."""

import math

import numpy as np
import pytest
import torch

from napari_amvlm.metrics import dice_iou, paired_t_test, threshold_dice_iou

# 4x4 masks: |A| = 5, |B| = 4, |A ∩ B| = 3, |A ∪ B| = 6 -> Dice = 6/9, IoU = 3/6
PRED = np.array([[1, 1, 0, 0],
                 [1, 1, 0, 0],
                 [0, 0, 0, 1],
                 [0, 0, 0, 0]], dtype=np.uint8)
TARGET = np.array([[0, 1, 0, 0],
                   [1, 1, 0, 0],
                   [0, 0, 1, 0],
                   [0, 0, 0, 0]], dtype=np.uint8)


def test_two_small_masks_by_hand():
    dice, iou = dice_iou(PRED, TARGET)
    assert dice == pytest.approx(6 / 9) and iou == pytest.approx(3 / 6)
    assert dice_iou(TARGET, PRED) == (dice, iou)
    assert isinstance(dice, float) and isinstance(iou, float)


@pytest.mark.parametrize("convert", [
    lambda m: m.astype(bool), lambda m: m.astype(np.float32), lambda m: torch.from_numpy(m.astype(np.int64)),
    lambda m: torch.from_numpy(m).bool(), lambda m: torch.from_numpy(m).float().requires_grad_(True),
])
def test_input_types(convert):
    dice, iou = dice_iou(convert(PRED), convert(TARGET))
    assert (dice, iou) == pytest.approx((6 / 9, 3 / 6))


def test_empty_cases():
    empty, full = np.zeros((3, 3), bool), np.ones((3, 3), bool)
    assert dice_iou(empty, empty) == (1.0, 1.0)
    assert dice_iou(empty, full) == (0.0, 0.0)
    assert dice_iou(full, empty) == (0.0, 0.0)
    assert dice_iou(full, full) == (1.0, 1.0)


def test_threshold_version():
    prob = np.where(PRED == 1, 0.7, 0.2)
    prob[0, 0] = 0.5  # exactly the threshold is background (strictly greater wins)
    dice, iou = threshold_dice_iou(prob, TARGET)
    assert (dice, iou) == pytest.approx((2 * 3 / (4 + 4), 3 / 5))
    assert threshold_dice_iou(torch.from_numpy(prob), TARGET, threshold=0.1) == pytest.approx(
        (2 * 4 / (16 + 4), 4 / 16))


def test_bad_masks_are_clear_errors():
    with pytest.raises(ValueError, match="binary mask"):
        dice_iou(PRED * 0.5, TARGET)
    with pytest.raises(ValueError, match="target must be a binary mask"):
        dice_iou(PRED, TARGET * 255)
    with pytest.raises(ValueError, match="does not match"):
        dice_iou(PRED, TARGET[:3])


def test_paired_t_test_closed_form():
    """n = 3 (df 2): t = mean(d) / (sd(d) / sqrt(3)) and P(|T_2| > t) = 1 - t / sqrt(2 + t^2)."""
    a = [0.80, 0.75, 0.90]
    b = [0.70, 0.72, 0.70]
    d = [0.10, 0.03, 0.20]
    mean = sum(d) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 2)
    t_hand = mean / (sd / math.sqrt(3))
    p_hand = 1 - abs(t_hand) / math.sqrt(2 + t_hand**2)
    t, p = paired_t_test(a, b)
    assert t == pytest.approx(t_hand, rel=1e-9) and p == pytest.approx(p_hand, rel=1e-9)
    t_rev, p_rev = paired_t_test(b, a)
    assert t_rev == pytest.approx(-t_hand) and p_rev == pytest.approx(p_hand)


def test_paired_t_test_df1_is_cauchy():
    """n = 2 (df 1, Cauchy): d = (1, 3) gives t = 2 / (sqrt(2) / sqrt(2)) = 2, p = 1 - 2 atan(2) / pi."""
    t, p = paired_t_test([1.0, 3.0], [0.0, 0.0])
    assert t == pytest.approx(2.0) and p == pytest.approx(1 - 2 * math.atan(2) / math.pi)


def test_paired_t_test_degenerate_and_bad_inputs():
    assert paired_t_test([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]) == (0.0, 1.0)
    assert paired_t_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == (math.inf, 0.0)
    with pytest.raises(ValueError, match="same length"):
        paired_t_test([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        paired_t_test([1], [2])
    with pytest.raises(ValueError, match="finite"):
        paired_t_test([1, float("nan")], [2, 3])
