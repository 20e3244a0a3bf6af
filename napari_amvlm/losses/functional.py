"""Functional maths shared by the losses. Shapes: B, C = batch sizes, N = tokens, E = embedding width.

Every input embedding is assumed L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(name: str, t: torch.Tensor, ndim: int) -> None:
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")


def same_text_targets(texts: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, B) row-stochastic targets: pair (i, j) is a positive when sentence j equals sentence i.

    With one sentence per sample this is the identity. Datasets where many images share a sentence (QaTa: 62
    sentences for 3,500 images) would otherwise teach the model that identical descriptions do not match.
    """
    keys = {t: k for k, t in enumerate(dict.fromkeys(texts))}
    ids = torch.tensor([keys[t] for t in texts], device=device)
    same = (ids[:, None] == ids[None, :]).float()
    return same / same.sum(1, keepdim=True)


def info_nce(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of softmax rows against targets: -1/N sum_i sum_j T_ij log softmax_j(logits_i).

    logits (N, M); targets (N, M) with rows summing to 1, or None for the identity (N == M).
    """
    _check("logits", logits, 2)
    logp = F.log_softmax(logits, dim=-1)
    if targets is None:
        if logits.shape[0] != logits.shape[1]:
            raise ValueError(f"identity targets need a square logits matrix, got {tuple(logits.shape)}")
        return -logp.diagonal().mean()
    if targets.shape != logits.shape:
        raise ValueError(f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}")
    return -(targets * logp).sum(-1).mean()


def symmetric_info_nce(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP loss: 1/2 [info_nce(logits, T) + info_nce(logits^T, T^T)] for a (B, B) logits matrix."""
    t_t = None if targets is None else targets.t()
    if t_t is not None:
        t_t = t_t / t_t.sum(1, keepdim=True)
    return 0.5 * (info_nce(logits, targets) + info_nce(logits.t(), t_t))


def token_info_nce(queries: torch.Tensor, matches: torch.Tensor, mask: torch.Tensor | None, tau: float) -> torch.Tensor:
    """Within-sample soft-matching InfoNCE (L_V2T or L_T2V of CSS), symmetric.

    For sample i with tokens q^1..q^N and their soft matches m^1..m^N (both (B, N, E)):
    -1/(2 sum_i N_i) sum_i sum_p [log e^{<q^p, m^p>/tau} / sum_k e^{<q^p, m^k>/tau}
                                 + log e^{<m^p, q^p>/tau} / sum_k e^{<m^p, q^k>/tau}],
    where p and k run over the sample's valid tokens (``mask`` (B, N) True), all tokens when mask is None.
    """
    _check("queries", queries, 3)
    if matches.shape != queries.shape:
        raise ValueError(f"matches {tuple(matches.shape)} do not match queries {tuple(queries.shape)}")
    b, n, _ = queries.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=queries.device)
    logits = torch.einsum("bpe,bke->bpk", queries, matches) / tau  # (B, N, N)
    invalid = ~(mask[:, :, None] & mask[:, None, :])
    eye = torch.eye(n, dtype=torch.bool, device=queries.device)
    logits = logits.masked_fill(invalid & ~eye, float("-inf"))  # the diagonal stays finite on padded rows
    fwd = -F.log_softmax(logits, dim=-1).diagonal(dim1=1, dim2=2)  # (B, N)
    bwd = -F.log_softmax(logits.transpose(1, 2), dim=-1).diagonal(dim1=1, dim2=2)
    w = mask.to(queries.dtype)
    return 0.5 * ((fwd * w).sum() + (bwd * w).sum()) / w.sum().clamp_min(1.0)


def w2_pairwise(mean1: torch.Tensor, std1: torch.Tensor, mean2: torch.Tensor, std2: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein distance between diagonal Gaussians, for every pair: (B, E) x (C, E) -> (B, C).

    W2(N(m1, s1^2), N(m2, s2^2))^2 = ||m1 - m2||^2 + ||s1 - s2||^2 with s the standard deviations.
    """
    for name, t in (("mean1", mean1), ("std1", std1), ("mean2", mean2), ("std2", std2)):
        _check(name, t, 2)
    return torch.cdist(mean1, mean2).pow(2) + torch.cdist(std1, std2).pow(2)


def pool_gaussian(mean: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gaussian per sample from its token Gaussians (B, N, E): average of the means and of the stds."""
    std = torch.exp(0.5 * logvar)
    if mask is None:
        return mean.mean(1), std.mean(1)
    w = mask.unsqueeze(-1).to(mean.dtype)
    n = w.sum(1).clamp_min(1.0)
    return (mean * w).sum(1) / n, (std * w).sum(1) / n


def pdt_scale(w2: torch.Tensor) -> torch.Tensor:
    """Confidence c_ij = 2 sigmoid(-W2_ij / mean(W2)) in (0, 1]: 1 for identical distributions, -> 0 for far ones.

    The mean is detached so that it is a normaliser, not a path for the gradient.
    """
    return 2.0 * torch.sigmoid(-w2 / w2.mean().detach().clamp_min(1e-8))


def icl_fine(global_emb: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None, tau: float,
             targets: torch.Tensor | None = None) -> torch.Tensor:
    """Fine intra-modal loss: each token of the augmented view i must pick its own sample's global embedding.

    -1/sum_i N_i sum_i sum_p sum_j T_ij log softmax_j(<tok_i^p, g_j> / tau); global_emb (B, E), tokens (B, N, E).
    """
    _check("global_emb", global_emb, 2)
    _check("tokens", tokens, 3)
    b, n, _ = tokens.shape
    logp = F.log_softmax(torch.einsum("bne,je->bnj", tokens, global_emb) / tau, dim=-1)  # (B, N, B)
    t = torch.eye(b, device=tokens.device, dtype=tokens.dtype) if targets is None else targets
    per_token = -(logp * t[:, None, :]).sum(-1)  # (B, N)
    w = torch.ones(b, n, device=tokens.device, dtype=tokens.dtype) if mask is None else mask.to(tokens.dtype)
    return (per_token * w).sum() / w.sum().clamp_min(1.0)
