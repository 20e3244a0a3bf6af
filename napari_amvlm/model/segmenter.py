"""The stage-2 model: a frozen AMVLM, the text-mask generator and the U-Net (the EMA teacher at inference)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import SegmenterConfig
from .amvlm import AMVLM
from .textmask import TextMaskGenerator
from .unet import UNet


class TextGuidedSegmenter(nn.Module):
    """Holds the parts stage 2 trains (``textmask``, ``unet``) beside the frozen vision-language model."""

    def __init__(self, amvlm: AMVLM, cfg: SegmenterConfig, unet: nn.Module | None = None,
                 textmask: TextMaskGenerator | None = None):
        """``unet`` / ``textmask`` share existing modules (e.g. the EMA teacher) instead of new ones."""
        super().__init__()
        self.cfg = cfg
        self.amvlm = amvlm
        for p in self.amvlm.parameters():
            p.requires_grad_(False)
        self.amvlm.eval()
        if textmask is None and cfg.use_text:
            textmask = TextMaskGenerator(amvlm.cfg.head.embed_dim, cfg.textmask)
        self.textmask = textmask
        self.unet = unet if unet is not None else UNet(cfg.unet)

    def train(self, mode: bool = True):
        super().train(mode)
        self.amvlm.eval()  # frozen: BatchNorm statistics and dropout stay in inference mode
        return self

    @torch.no_grad()
    def frozen_embeddings(self, images: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """(patch tokens (B, P, E), grid, sentence embeddings (B, E)) from the frozen AMVLM."""
        img = self.amvlm.encode_image(images, with_dist=False)
        txt = self.amvlm.encode_text(texts, with_dist=False)
        return img["tokens"], img["grid"], txt["global"]

    def stage2_state(self) -> dict[str, torch.Tensor]:
        """The tensors stage 2 owns (the AMVLM is stored in its own file)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if not k.startswith("amvlm.")}
