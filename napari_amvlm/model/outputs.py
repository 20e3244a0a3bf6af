"""Typed outputs of the model modules, with their shapes.

B = batch, P = patches (grid x grid), L = text tokens (padded), D = encoder width, E = shared embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class VisionOutput:
    cls: torch.Tensor  # (B, D) CLS token after the final norm
    patches: torch.Tensor  # (B, P, D) patch tokens, row-major over the grid
    grid: tuple[int, int]  # (rows, cols) of the patch grid


@dataclass
class TextOutput:
    sentence: torch.Tensor  # (B, D) sentence token (mean of word tokens, or [CLS])
    tokens: torch.Tensor  # (B, L, D) every token, padding included
    word_mask: torch.Tensor  # (B, L) bool: True on word tokens (not padding, [CLS] or [SEP])


@dataclass
class Gaussian:
    mean: torch.Tensor  # (..., E) the token embedding itself (PDT keeps the mean as the identity)
    logvar: torch.Tensor  # (..., E) log-variance: the alignment uncertainty of the token

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)


@dataclass
class AMVLMEmbeddings:
    """Everything the losses and the segmentation stage need from one forward pass, L2-normalised in E."""

    image_global: torch.Tensor  # (B, E) v_cls
    image_tokens: torch.Tensor  # (B, P, E) v^1..v^P
    text_global: torch.Tensor  # (B, E) t_cls
    text_tokens: torch.Tensor  # (B, L, E) t^1..t^L (zeros on padding)
    word_mask: torch.Tensor  # (B, L) bool
    image_dist: Gaussian | None = None  # PDT Gaussians of the patch tokens, (B, P, E)
    text_dist: Gaussian | None = None  # PDT Gaussians of the word tokens, (B, L, E)
    grid: tuple[int, int] = (0, 0)
    extra_text_global: torch.Tensor | None = None  # (M, E) sentences encoded in the same pass (hard negatives)
