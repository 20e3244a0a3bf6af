"""Evaluation metrics as in the paper (GUIDE §2.5): per-image Dice and IoU of binary masks, averaged over images
by the caller, and a paired t-test between two methods' per-image scores.

For one image with predicted mask A and ground truth B (any equal shapes, values bool or {0, 1}):

    Dice = 2 |A ∩ B| / (|A| + |B|)        IoU = |A ∩ B| / |A ∪ B|

Both empty -> (1.0, 1.0) (a correct "nothing here"); exactly one empty -> (0.0, 0.0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_binary(name: str, x: ArrayLike) -> np.ndarray:
    """A bool array; a clear error unless the values are bool or exactly 0 / 1."""
    arr = _as_numpy(x)
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a numeric or bool mask, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be a binary mask with values 0/1 or bool, got values in "
                         f"[{arr.min()}, {arr.max()}] (threshold probabilities with threshold_dice_iou)")
    return arr.astype(bool)


def dice_iou(pred: ArrayLike, target: ArrayLike) -> tuple[float, float]:
    """(Dice, IoU) in [0, 1] of one binary prediction against its binary ground truth (see module doc)."""
    a, b = _as_binary("pred", pred), _as_binary("target", target)
    if a.shape != b.shape:
        raise ValueError(f"pred shape {a.shape} does not match target shape {b.shape}")
    inter = int(np.logical_and(a, b).sum())
    n_a, n_b = int(a.sum()), int(b.sum())
    if n_a + n_b == 0:
        return 1.0, 1.0
    return 2.0 * inter / (n_a + n_b), inter / (n_a + n_b - inter)


def threshold_dice_iou(prob: ArrayLike, target: ArrayLike, threshold: float = 0.5) -> tuple[float, float]:
    """``dice_iou(prob > threshold, target)`` for a probability map of one image."""
    return dice_iou(_as_numpy(prob) > threshold, target)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of the paired t-test on d_i = a_i - b_i: t = mean(d) / (sd(d) / sqrt(n)), df = n - 1.

    ``sd`` is the sample standard deviation (ddof 1). When all differences are equal the test is degenerate:
    all zero -> (0.0, 1.0); a constant nonzero shift -> (±inf, 0.0). Uses ``scipy.stats.ttest_rel`` for the
    p value (scipy comes with scikit-image, a dependency).
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be 1-D sequences of the same length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must hold finite numbers")
    d = x - y
    if np.all(d == d[0]):
        return (0.0, 1.0) if d[0] == 0 else (math.copysign(math.inf, d[0]), 0.0)
    try:
        from scipy.stats import ttest_rel
    except ImportError as err:  # pragma: no cover - scipy ships with scikit-image
        raise ImportError("paired_t_test needs scipy (pip install scipy)") from err
    result = ttest_rel(x, y)
    return float(result.statistic), float(result.pvalue)
