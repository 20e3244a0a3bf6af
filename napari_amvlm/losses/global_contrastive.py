"""Global alignment: symmetric InfoNCE between image and sentence embeddings across the batch.

L_global = 1/2 [CE(V T^T / tau, Y) + CE(T V^T / tau, Y^T)], V = image_global (B, E), T = text_global (B, E),
Y = identity, or the same-sentence targets when ``multiplicity_targets`` is on.
"""

from __future__ import annotations

import torch

from .functional import symmetric_info_nce


def global_loss(image_global: torch.Tensor, text_global: torch.Tensor, tau: float,
                targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    if image_global.shape != text_global.shape or image_global.ndim != 2:
        raise ValueError(f"expected two (B, E) tensors, got {tuple(image_global.shape)} and {tuple(text_global.shape)}")
    loss = symmetric_info_nce(image_global @ text_global.t() / tau, targets)
    return {"global": loss, "loss": loss}
