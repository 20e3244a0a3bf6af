"""Fusion of the teacher probability P and the text mask T (GUIDE §2.2 pseudo-labels, §2.3 inference).

Both training (pseudo-labels) and inference (the mask shown in napari) use the same rule, in probability space::

    y_hat = lam * T + (1 - lam) * P            P, T, y_hat in [0, 1], any (but equal) shapes
    label = 1[y_hat > threshold]               hard pseudo-label / displayed mask
    confidence = |2 y_hat - 1|                 (threshold 0.5; see ``pseudo_label`` for other thresholds)

y_hat is a convex combination, so agreement of both sources gives 0 or 1 (P = T = 0 -> 0, P = T = 1 -> 1)
and disagreement gives an uncertain value near the threshold with a low confidence weight.

Why not the released σ(P + T): with probabilities P, T in [0, 1], P + T lies in [0, 2], so σ(P + T) lies in
[σ(0), σ(2)] = [0.5, 0.881] (the GUIDE quotes the narrower (0.63, 0.84)). Every pixel,
including one that both sources call background, is at or above 0.5: thresholding at 0.5 marks (almost)
everything foreground, and the compressed range separates nothing. P and T are probabilities, not logits, so
adding them and applying a sigmoid has no meaning.
"""

from __future__ import annotations

import torch


def _check_prob(name: str, t: torch.Tensor) -> None:
    if not torch.is_tensor(t):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point probability tensor, got {t.dtype}")
    if t.numel() and bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
        raise ValueError(f"{name} must hold probabilities in [0, 1] (apply a sigmoid to logits first); "
                         f"got values in [{float(t.min()):.4g}, {float(t.max()):.4g}]")


def fuse(teacher_prob: torch.Tensor, text_prob: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """lam * text_prob + (1 - lam) * teacher_prob: same shape as the inputs, values in [0, 1]."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    _check_prob("teacher_prob", teacher_prob)
    _check_prob("text_prob", text_prob)
    if teacher_prob.shape != text_prob.shape:
        raise ValueError(f"teacher_prob {tuple(teacher_prob.shape)} and text_prob {tuple(text_prob.shape)} "
                         "must have the same shape (resize the text mask to the image first)")
    return lam * text_prob + (1.0 - lam) * teacher_prob


def confidence(fused: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Distance of ``fused`` from the threshold scaled to [0, 1]: |2 y - 1| for threshold 0.5.

    For another threshold th: (y - th) / (1 - th) above it and (th - y) / th below, so the weight is 0 on the
    decision boundary and 1 at 0 and 1.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    above = (fused - threshold) / (1.0 - threshold)
    below = (threshold - fused) / threshold
    return torch.where(fused > threshold, above, below).clamp(0.0, 1.0)


def pseudo_label(teacher_prob: torch.Tensor, text_prob: torch.Tensor, lam: float = 0.5, threshold: float = 0.5
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(label, weight): label = 1[fuse(P, T) > threshold] as 0./1. floats, weight = ``confidence`` in [0, 1].

    Both have the shape of the inputs; use them as ``target`` and ``weight`` of
    ``losses.segmentation.segmentation_loss``.
    """
    fused = fuse(teacher_prob, text_prob, lam)
    label = (fused > threshold).to(fused.dtype)
    return label, confidence(fused, threshold)
