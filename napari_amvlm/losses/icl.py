"""ICL — intra-modal contrastive learning between an original and an augmented view.

Image: coarse L = InfoNCE(v_cls, v_cls_aug) across the batch (symmetric); fine L = each patch token of the
augmented view must pick its own image's v_cls among the batch (``functional.icl_fine``). Text: the same with
t_cls and the word tokens of the augmented view (a second pass with dropout noise). Both views keep their
gradients, so the encoders are trained by this term.

L_ICL = 1/4 (L_img_coarse + L_img_fine + L_txt_coarse + L_txt_fine).
"""

from __future__ import annotations

import torch

from ..model.outputs import AMVLMEmbeddings
from .functional import icl_fine, symmetric_info_nce


def icl_loss(emb: AMVLMEmbeddings, aug: AMVLMEmbeddings, tau: float,
             text_targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    img_coarse = symmetric_info_nce(emb.image_global @ aug.image_global.t() / tau, None)
    img_fine = icl_fine(emb.image_global, aug.image_tokens, None, tau, None)
    txt_coarse = symmetric_info_nce(emb.text_global @ aug.text_global.t() / tau, text_targets)
    txt_fine = icl_fine(emb.text_global, aug.text_tokens, aug.word_mask, tau, text_targets)
    loss = 0.25 * (img_coarse + img_fine + txt_coarse + txt_fine)
    return {"img_coarse": img_coarse, "img_fine": img_fine, "txt_coarse": txt_coarse, "txt_fine": txt_fine,
            "loss": loss}
