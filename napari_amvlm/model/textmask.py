"""Text-mask generator: frozen AMVLM patch embeddings + a sentence embedding -> a soft mask.

patch tokens (B, P, E) -> grid (B, E, g, g) -> light upsampling decoder -> dense embeddings F (B, E, g*u, g*u),
L2-normalised per pixel -> T = sigmoid(a <F, t> + b) with t the image's OWN sentence embedding (B, E) and
learnable scalars a, b -> bilinear upsampling of the logits to the image size.

Position prior (``cfg.position_prior``): the regions a sentence's position words name ("lower left lung": the
lower third of the image's left half; :func:`napari_amvlm.data.text.position_cells`) each own a learned logit map
M_k (prior_grid x prior_grid, upsampled to the decoder's resolution). The sentence adds the smooth maximum
log sum_k exp(M_k) over the regions it names to a <F, t> + b, and nothing when it names none. The maps start at
zero (no effect) and learn from the labeled masks where each region is. This is how "left" and "right" steer the
mask: the sentence embeddings of the two (cosine 0.99 with the CPU-trained encoder) are too close to do it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TextMaskConfig
from ..data.text import POSITION_CELLS, position_cells

# The maps are stored divided by this gain, so that Adam (whose step does not depend on the scale of a
# parameter) moves a prior logit by gain x lr per step: a few hundred steps are enough to learn them.
PRIOR_GAIN = 25.0


@dataclass
class TextMaskOutput:
    dense: torch.Tensor  # (B, E, h, w) dense embeddings F, unit length per pixel
    logits: torch.Tensor  # (B, 1, H, W) a <F, t> + b upsampled to the image size
    prob: torch.Tensor  # (B, 1, H, W) T = sigmoid(logits)
    low_prob: torch.Tensor  # (B, 1, h, w) T at the decoder's resolution (used by the L_tg pooling)


class TextMaskGenerator(nn.Module):
    def __init__(self, embed_dim: int, cfg: TextMaskConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.Conv2d(embed_dim, cfg.hidden, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(cfg.hidden), nn.ReLU(inplace=True)]
        steps = max(0, cfg.upsample.bit_length() - 1)
        for _ in range(steps):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(cfg.hidden, cfg.hidden, 3, padding=1, bias=False), nn.BatchNorm2d(cfg.hidden),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(cfg.hidden, embed_dim, 1))
        self.decoder = nn.Sequential(*layers)
        self.scale = nn.Parameter(torch.tensor(float(cfg.init_scale)))
        self.bias = nn.Parameter(torch.tensor(float(cfg.init_bias)))
        self.prior = (nn.Parameter(torch.zeros(len(POSITION_CELLS), cfg.prior_grid, cfg.prior_grid))
                      if cfg.position_prior else None)

    def position_logits(self, texts: Sequence[str], size: tuple[int, int]) -> torch.Tensor | None:
        """(B, 1, h, w) prior logits of the regions each sentence names (0 where it names none); None without a
        prior."""
        if self.prior is None:
            return None
        named = torch.zeros(len(texts), len(POSITION_CELLS), dtype=torch.bool, device=self.prior.device)
        for i, text in enumerate(texts):
            named[i, position_cells(text)] = True
        maps = F.interpolate(PRIOR_GAIN * self.prior[None], size=size, mode="bilinear", align_corners=False)
        masked = maps.expand(len(texts), -1, -1, -1).masked_fill(~named[:, :, None, None], float("-inf"))
        lse = torch.logsumexp(masked, dim=1, keepdim=True)
        return torch.where(named.any(1)[:, None, None, None], lse, torch.zeros_like(lse))

    def dense(self, patch_tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Dense embeddings F (B, E, h, w) from patch tokens (B, P, E). Depends on the image only: cache it."""
        b, p, e = patch_tokens.shape
        if p != grid[0] * grid[1]:
            raise ValueError(f"{p} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
        x = patch_tokens.transpose(1, 2).reshape(b, e, grid[0], grid[1])
        return F.normalize(self.decoder(x), dim=1)

    def from_dense(self, dense: torch.Tensor, sentence: torch.Tensor, size: tuple[int, int],
                   texts: Sequence[str]) -> TextMaskOutput:
        """T for each image's own sentence: dense (B, E, h, w), sentence (B, E) unit length, texts the B
        sentences themselves (for the position prior)."""
        if sentence.ndim != 2 or sentence.shape[0] != dense.shape[0] or sentence.shape[1] != dense.shape[1]:
            raise ValueError(f"sentence embeddings {tuple(sentence.shape)} do not fit dense {tuple(dense.shape)}")
        if len(texts) != dense.shape[0]:
            raise ValueError(f"{len(texts)} sentences for {dense.shape[0]} images")
        low = self.scale * torch.einsum("behw,be->bhw", dense, sentence).unsqueeze(1) + self.bias
        prior = self.position_logits(texts, low.shape[-2:])
        if prior is not None:
            low = low + prior.to(low.dtype)
        logits = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return TextMaskOutput(dense=dense, logits=logits, prob=torch.sigmoid(logits), low_prob=torch.sigmoid(low))

    def forward(self, patch_tokens: torch.Tensor, grid: tuple[int, int], sentence: torch.Tensor,
                size: tuple[int, int], texts: Sequence[str]) -> TextMaskOutput:
        return self.from_dense(self.dense(patch_tokens, grid), sentence, size, texts)
