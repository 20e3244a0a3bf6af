"""Segmentation loss of the stage-2 student: 0.5 soft Dice + 0.5 BCE, plain (default) or class-balanced.

Shapes: ``logits``, ``target`` and the optional per-pixel confidence ``weight`` are all (B, 1, H, W);
``target`` holds labels in [0, 1] (hard {0, 1} labels or pseudo-labels), ``weight`` values >= 0 (e.g. the
pseudo-label confidence |2 y_hat - 1| of ``fusion.pseudo_label``). p = sigmoid(logits). Sums run over the
pixels of one image b; every loss is computed per image and then averaged over the batch.

- soft Dice:  D_b = 1 - (2 sum w p y + eps) / (sum w p + sum w y + eps)
- plain BCE (default): BCE_b = (1 / N) sum_i w_i bce(x_i, y_i) over the N pixels of the image, with
  bce = -[y log p + (1 - y) log(1 - p)]: every pixel weighs the same, whatever its class.
- balanced BCE (``bce="balanced"``, the released code's choice): BCE_b = sum_i w_i c_i bce(x_i, y_i), bce = -[y log p + (1 - y) log(1 - p)], with class weights
  c_i = 0.5 / n_pos for positive pixels (y_i > 0.5) and 0.5 / n_neg for negatives, so that (with w = 1)
  positives and negatives each carry a total weight 1/2 whatever the foreground fraction; when an image has no
  positive (or no negative) pixel, the other class carries the whole weight 1. Low confidence w < 1 lowers the
  loss (it is not renormalised away).
- total: loss = 0.5 mean_b D_b + 0.5 mean_b BCE_b.

Why plain is the default: with ~9 % foreground (QaTa) the balanced weights make each positive pixel weigh ~10x
a negative one, which moves the 0.5 threshold outward and over-segments. Measured in ``docs/RESULTS.md``
(recipe study): supervised U-Nets trained with each, same budget, same split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> None:
    """(B, 1, H, W) logits, with target and weight of exactly the same shape."""
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"logits must have shape (B, 1, H, W), got {tuple(logits.shape)}")
    if target.shape != logits.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    if weight is not None and weight.shape != logits.shape:
        raise ValueError(f"weight shape {tuple(weight.shape)} does not match logits {tuple(logits.shape)}")


def _prepare(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 logits, target and weight (ones when None), shape-checked."""
    _check(logits, target, weight)
    x = logits.float()
    y = target.to(x.dtype)
    w = torch.ones_like(x) if weight is None else weight.to(x.dtype)
    return x, y, w


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                   eps: float = 1.0) -> torch.Tensor:
    """Mean over images of 1 - (2 sum w p y + eps) / (sum w p + sum w y + eps); a scalar tensor."""
    x, y, w = _prepare(logits, target, weight)
    p = torch.sigmoid(x)
    dims = (1, 2, 3)
    inter = (w * p * y).sum(dims)
    denom = (w * p).sum(dims) + (w * y).sum(dims)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of sum_i w_i c_i bce_i with per-class weights c (see module doc); a scalar tensor."""
    x, y, w = _prepare(logits, target, weight)
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    pos = (y > 0.5).to(x.dtype)
    neg = 1.0 - pos
    n_pos = pos.sum((1, 2, 3), keepdim=True)
    n_neg = neg.sum((1, 2, 3), keepdim=True)
    # each present class gets 1/2, or 1 when it is the only class of the image
    share_pos = torch.where(n_neg > 0, 0.5, 1.0)
    share_neg = torch.where(n_pos > 0, 0.5, 1.0)
    c = pos * share_pos / n_pos.clamp_min(1.0) + neg * share_neg / n_neg.clamp_min(1.0)
    return (w * c * bce).sum((1, 2, 3)).mean()


def plain_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of (1 / N) sum_i w_i bce_i, every pixel weighing the same (see module doc); a scalar."""
    x, y, w = _prepare(logits, target, weight)
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    return (w * bce).mean((1, 2, 3)).mean()


BCE_KINDS = {"plain": plain_bce, "balanced": balanced_bce}


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                      bce: str = "plain") -> dict[str, torch.Tensor]:
    """{"dice": soft Dice, "bce": plain or balanced BCE, "loss": 0.5 dice + 0.5 bce}, all scalar tensors."""
    if bce not in BCE_KINDS:
        raise ValueError(f"bce must be one of {', '.join(BCE_KINDS)}, not {bce!r}")
    dice = soft_dice_loss(logits, target, weight)
    bce_term = BCE_KINDS[bce](logits, target, weight)
    return {"dice": dice, "bce": bce_term, "loss": 0.5 * dice + 0.5 * bce_term}
