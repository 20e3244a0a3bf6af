"""Total AMVLM pre-training loss: L = w_global L_global + w_css L_CSS + w_icl L_ICL (+ w_pos L_pos), every term
reported. L_pos (position-word hard negatives) needs the embeddings of the rewritten sentences: pass
``negatives`` = (embeddings (M, E), owner (M,)) from ``position_rewrites``."""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..model.amvlm import AMVLM
from ..model.outputs import AMVLMEmbeddings
from .css import css_loss
from .functional import same_text_targets
from .global_contrastive import global_loss
from .icl import icl_loss
from .position_negatives import position_negative_loss


def amvlm_loss(model: AMVLM, cfg: LossConfig, emb: AMVLMEmbeddings, texts: list[str],
               aug: AMVLMEmbeddings | None = None, global_only: bool = False,
               negatives: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Named terms (``global``, ``css``, ``css/v2t`` ...) plus ``loss``; ``aug`` is the augmented-view pass."""
    tau = cfg.temperature
    targets = same_text_targets(texts, emb.image_global.device) if cfg.multiplicity_targets else None
    g = global_loss(emb.image_global, emb.text_global, tau, targets)
    out: dict[str, torch.Tensor] = {"global": g["loss"]}
    total = cfg.w_global * g["loss"]
    if not global_only:
        c = css_loss(emb, model.patch_to_words, model.word_to_patches, tau, targets)
        out["css"] = c.pop("loss")
        out.update({f"css/{k}": v for k, v in c.items()})
        total = total + cfg.w_css * out["css"]
        if aug is None:
            raise ValueError("ICL needs the augmented view (aug=None)")
        i = icl_loss(emb, aug, tau, targets)
        out["icl"] = i.pop("loss")
        out.update({f"icl/{k}": v for k, v in i.items()})
        total = total + cfg.w_icl * out["icl"]
    if cfg.w_pos:
        if negatives is None:
            raise ValueError("w_pos > 0 needs the rewritten sentences' embeddings (negatives=None)")
        pos = position_negative_loss(emb.image_global, emb.text_global, negatives[0], negatives[1], tau)
        out["pos_neg"] = pos["loss"]
        total = total + cfg.w_pos * pos["loss"]
    out["loss"] = total
    return out
