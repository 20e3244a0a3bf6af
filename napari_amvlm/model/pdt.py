"""PDT — probability distribution transformation.

A small transformer over a sequence of (normalised) token embeddings predicts, for each token, the
log-variance of a diagonal Gaussian whose mean is the token embedding itself (mean = identity). The variance
is the model's alignment uncertainty for that token; training sees it through the 2-Wasserstein distance
(``losses.functional.w2_pairwise``) and inference reuses it as an uncertainty map.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import HeadConfig
from .outputs import Gaussian


class PDTHead(nn.Module):
    """tokens (B, N, E) [+ padding mask (B, N) True = keep] -> Gaussian(mean (B, N, E), logvar (B, N, E))."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        e = cfg.embed_dim
        layer = nn.TransformerEncoderLayer(e, cfg.pdt_heads, dim_feedforward=2 * e, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.pdt_layers, enable_nested_tensor=False)
        self.to_logvar = nn.Linear(e, e)
        # Start confident (sigma ~ 0.14) but not identical across tokens: with equal variances everywhere the
        # gradient of ||sigma_i - sigma_j||^2 is exactly zero and the heads would never learn.
        nn.init.normal_(self.to_logvar.weight, std=0.05)
        nn.init.constant_(self.to_logvar.bias, -4.0)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> Gaussian:
        pad = None if keep is None else ~keep
        h = self.encoder(tokens, src_key_padding_mask=pad)
        logvar = self.to_logvar(h).clamp(-12.0, 6.0)
        if keep is not None:
            logvar = logvar.masked_fill(~keep.unsqueeze(-1), 0.0)
        return Gaussian(mean=tokens, logvar=logvar)
