"""CSS — cross-modal similarity supervision (soft matching + PDT).

Inputs (all L2-normalised): patches V (B, P, E), words T (B, L, E) with word mask (B, L), and the PDT Gaussians
of both. With cross-attention soft matching (``model.matching``):

- within-sample token terms (the paper's L_V2T and its word-side twin L_T2V): each patch v_i^p is matched to
  t~_i^p (attention over the words of its own sentence) and must pick it among the soft matches of the other
  patches of the same image, and symmetrically; same for words against attended patches
  (``functional.token_info_nce``).
- PDT term, pairwise over the batch: S_ij = 1/2 [mean_p <v_i^p, t~_{i<-j}^p> + mean_k <t_j^k, v~_{j<-i}^k>] is the
  soft-matching similarity of image i and sentence j; W2_ij is the 2-Wasserstein distance between the pooled
  PDT Gaussians of image i and sentence j (a full B x B matrix, not only matched pairs); the logits
  c_ij S_ij / tau with c = ``functional.pdt_scale(W2)`` go through a symmetric InfoNCE. The gradient reaches
  the PDT heads through c.

L_CSS = 1/2 (L_V2T + L_T2V) + L_PDT.
"""

from __future__ import annotations

import torch

from ..model.matching import CrossAttentionMatcher
from ..model.outputs import AMVLMEmbeddings
from .functional import pdt_scale, pool_gaussian, symmetric_info_nce, token_info_nce, w2_pairwise


def soft_match_similarity(emb: AMVLMEmbeddings, p2w: CrossAttentionMatcher, w2p: CrossAttentionMatcher
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairwise soft matches: returns S (B, B), own-sentence word matches of patches (B, P, E) and
    own-image patch matches of words (B, L, E)."""
    v, t, wm = emb.image_tokens, emb.text_tokens, emb.word_mask
    b = v.shape[0]
    idx = torch.arange(b, device=v.device)
    t_for_v = p2w(v, t, wm)  # (B_img, B_txt, P, E)
    v_for_t = w2p(t, v, None)  # (B_txt, B_img, L, E)
    s_img = torch.einsum("ipe,ijpe->ij", v, t_for_v) / v.shape[1]
    w = wm.to(v.dtype)
    s_txt = torch.einsum("jke,jike,jk->ij", t, v_for_t, w) / w.sum(1).clamp_min(1.0)[None, :]
    return 0.5 * (s_img + s_txt), t_for_v[idx, idx], v_for_t[idx, idx]


def css_loss(emb: AMVLMEmbeddings, p2w: CrossAttentionMatcher, w2p: CrossAttentionMatcher, tau: float,
             targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    if emb.image_dist is None or emb.text_dist is None:
        raise ValueError("CSS needs the PDT Gaussians: run the model with with_dist=True")
    sim, t_own, v_own = soft_match_similarity(emb, p2w, w2p)
    v2t = token_info_nce(emb.image_tokens, t_own, None, tau)
    t2v = token_info_nce(emb.text_tokens, v_own, emb.word_mask, tau)
    img_mu, img_sd = pool_gaussian(emb.image_dist.mean, emb.image_dist.logvar, None)
    txt_mu, txt_sd = pool_gaussian(emb.text_dist.mean, emb.text_dist.logvar, emb.word_mask)
    w2 = w2_pairwise(img_mu, img_sd, txt_mu, txt_sd)
    pdt = symmetric_info_nce(pdt_scale(w2) * sim / tau, targets)
    loss = 0.5 * (v2t + t2v) + pdt
    return {"v2t": v2t, "t2v": t2v, "pdt": pdt, "w2_matched": w2.diagonal().mean().detach(), "loss": loss}
