"""Text-mask generator: frozen AMVLM patch embeddings + a sentence embedding -> a soft mask.

patch tokens (B, P, E) -> grid (B, E, g, g) -> light upsampling decoder -> dense embeddings F (B, E, g*u, g*u),
L2-normalised per pixel -> T = sigmoid(a <F, t> + b) with t the image's OWN sentence embedding (B, E) and
learnable scalars a, b -> bilinear upsampling of the logits to the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TextMaskConfig


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

    def dense(self, patch_tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Dense embeddings F (B, E, h, w) from patch tokens (B, P, E). Depends on the image only: cache it."""
        b, p, e = patch_tokens.shape
        if p != grid[0] * grid[1]:
            raise ValueError(f"{p} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
        x = patch_tokens.transpose(1, 2).reshape(b, e, grid[0], grid[1])
        return F.normalize(self.decoder(x), dim=1)

    def from_dense(self, dense: torch.Tensor, sentence: torch.Tensor, size: tuple[int, int]) -> TextMaskOutput:
        """T for each image's own sentence: dense (B, E, h, w), sentence (B, E) unit length."""
        if sentence.ndim != 2 or sentence.shape[0] != dense.shape[0] or sentence.shape[1] != dense.shape[1]:
            raise ValueError(f"sentence embeddings {tuple(sentence.shape)} do not fit dense {tuple(dense.shape)}")
        low = self.scale * torch.einsum("behw,be->bhw", dense, sentence).unsqueeze(1) + self.bias
        logits = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return TextMaskOutput(dense=dense, logits=logits, prob=torch.sigmoid(logits), low_prob=torch.sigmoid(low))

    def forward(self, patch_tokens: torch.Tensor, grid: tuple[int, int], sentence: torch.Tensor,
                size: tuple[int, int]) -> TextMaskOutput:
        return self.from_dense(self.dense(patch_tokens, grid), sentence, size)
