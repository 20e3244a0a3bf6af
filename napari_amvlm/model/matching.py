"""Bidirectional cross-attention soft matching.

Each query token q^p (e.g. a patch) attends over the key tokens k^1..k^K of another modality (e.g. the words of
a sentence): alpha^{p->k} = softmax_k((W_q q^p)^T (W_k k^k) / sqrt(E)), and its soft match is
m^p = sum_k alpha^{p->k} W_v k^k, L2-normalised. Padded keys get zero weight (masked before the softmax).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttentionMatcher(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def attention(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """Weights for every (query sample i, key sample j): queries (B, N, E), keys (C, K, E) -> (B, C, N, K)."""
        scores = torch.einsum("bne,cke->bcnk", self.q(queries), self.k(keys)) * self.scale
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[None, :, None, :], float("-inf"))
        return scores.softmax(dim=-1)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor | None = None,
                pairwise: bool = True) -> torch.Tensor:
        """Soft matches of every query token.

        pairwise=True: queries (B, N, E) against the keys of every sample, keys (C, K, E) -> (B, C, N, E).
        pairwise=False: each sample against its own keys only (C == B) -> (B, N, E).
        """
        if not pairwise:
            scores = torch.einsum("bne,bke->bnk", self.q(queries), self.k(keys)) * self.scale
            if key_mask is not None:
                scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
            return F.normalize(torch.einsum("bnk,bke->bne", scores.softmax(-1), self.v(keys)), dim=-1)
        alpha = self.attention(queries, keys, key_mask)
        return F.normalize(torch.einsum("bcnk,cke->bcne", alpha, self.v(keys)), dim=-1)
