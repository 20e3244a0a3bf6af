"""Position-word hard negatives: each image must prefer its own sentence to the same sentence with its position
words swapped (left <-> right, and upper <-> lower).

For image i with global embedding v_i (E,), its sentence embedding t_i (E,) and the embeddings n_ik (E,) of the
K_i rewrites of its sentence that differ from it (the side swap and the zone swap; a sentence that names no
position, or that the swap leaves unchanged, gives none):

    L_pos = 1/M sum_i sum_k softplus((v_i . n_ik - v_i . t_i) / tau),   M = sum_i K_i

i.e. the logistic loss of "own beats rewrite". The global InfoNCE compares an image with the other sentences of
its batch, where the side-swapped twin of its sentence is rarely present; this term puts it there, which is what
teaches the image embedding which side and which zone the sentence names. Shapes: image (B, E), own (B, E),
negatives (M, E) with ``owner`` (M,) the image index of each negative row. Embeddings are L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.text import flip_text_horizontal, flip_text_vertical, position_cells


def position_rewrites(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """(rewritten sentences, index of the sentence each comes from): the side swap and the zone swap of each
    sentence, when they change its meaning (a rewrite that names the same lung regions, e.g. both lungs in full
    with the two sides in the other order, is not a negative)."""
    out, owner = [], []
    for i, text in enumerate(texts):
        cells = position_cells(text)
        for rewrite in dict.fromkeys((flip_text_horizontal(text), flip_text_vertical(text))):
            if rewrite != text and not (cells and position_cells(rewrite) == cells):
                out.append(rewrite)
                owner.append(i)
    return out, owner


def position_negative_loss(image: torch.Tensor, own: torch.Tensor, negatives: torch.Tensor,
                           owner: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
    """{"pos_neg": L_pos, "loss": L_pos}; zero (with gradients attached) when there is no negative."""
    if image.ndim != 2 or own.shape != image.shape:
        raise ValueError(f"image and own must be two (B, E) tensors, got {tuple(image.shape)}, {tuple(own.shape)}")
    if negatives.ndim != 2 or negatives.shape[1] != image.shape[1] or owner.shape != negatives.shape[:1]:
        raise ValueError(f"negatives (M, E) and owner (M,) expected, got {tuple(negatives.shape)}, "
                         f"{tuple(owner.shape)}")
    if negatives.shape[0] == 0:
        zero = (image.sum() + own.sum()) * 0.0
        return {"pos_neg": zero, "loss": zero}
    v = image[owner]
    margin = ((v * negatives).sum(-1) - (v * own[owner]).sum(-1)) / tau
    loss = F.softplus(margin).mean()
    return {"pos_neg": loss, "loss": loss}
