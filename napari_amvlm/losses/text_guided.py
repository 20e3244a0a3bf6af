"""L_tg — text-guided contrastive loss of the text-mask generator.

The mask-pooled image embedding v_i = sum_hw T_i F_i / sum_hw T_i (B, E), L2-normalised, is contrasted with the
sentence embeddings t (B, E) across the batch with a symmetric InfoNCE (same-sentence pairs count as positives
when targets are given). It keeps masks from lighting up where the sentence does not apply: pooling over the
wrong region gives an embedding that does not match the image's own sentence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import symmetric_info_nce


def mask_pooled(dense: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """v = sum T F / sum T: dense (B, E, h, w), mask (B, 1, h, w) -> (B, E), unit length."""
    if mask.shape[0] != dense.shape[0] or mask.shape[-2:] != dense.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit dense embeddings {tuple(dense.shape)}")
    pooled = (dense * mask).sum((2, 3)) / mask.sum((2, 3)).clamp_min(eps)
    return F.normalize(pooled, dim=-1)


def text_guided_loss(dense: torch.Tensor, mask: torch.Tensor, sentence: torch.Tensor, tau: float,
                     targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    v = mask_pooled(dense, mask)
    loss = symmetric_info_nce(v @ sentence.t() / tau, targets)
    return {"tg": loss, "loss": loss}
