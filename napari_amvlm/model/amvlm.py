"""The AMVLM vision-language model: encoders, projection heads, PDT heads and soft matchers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AMVLMConfig
from .matching import CrossAttentionMatcher
from .outputs import AMVLMEmbeddings
from .pdt import PDTHead
from .text import TextEncoder
from .vision import VisionEncoder


class Projection(nn.Module):
    """Linear-BN-ReLU-Linear into the shared space, L2-normalised. Tokens are projected where ``keep`` is True."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim == 2:
            return F.normalize(self.net(x), dim=-1)
        if keep is None:
            keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        out = x.new_zeros(*x.shape[:2], self.net[-1].out_features)
        out[keep] = F.normalize(self.net(x[keep]), dim=-1)
        return out


class AMVLM(nn.Module):
    """images (B, 3, S, S) in [0, 1] and sentences -> :class:`AMVLMEmbeddings` in the shared space."""

    def __init__(self, cfg: AMVLMConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        e, h = cfg.head.embed_dim, cfg.head.hidden_dim
        self.vision = VisionEncoder(cfg.vision)
        self.text = TextEncoder(cfg.text)
        self.image_global_proj = Projection(cfg.vision.width, h, e)
        self.image_token_proj = Projection(cfg.vision.width, h, e)
        self.text_global_proj = Projection(self.text.width, h, e)
        self.text_token_proj = Projection(self.text.width, h, e)
        self.image_pdt = PDTHead(cfg.head)
        self.text_pdt = PDTHead(cfg.head)
        self.patch_to_words = CrossAttentionMatcher(e)
        self.word_to_patches = CrossAttentionMatcher(e)

    def encode_image(self, images: torch.Tensor, with_dist: bool = True) -> dict:
        out = self.vision(images)
        tokens = self.image_token_proj(out.patches)
        return {
            "global": self.image_global_proj(out.cls),
            "tokens": tokens,
            "dist": self.image_pdt(tokens) if with_dist else None,
            "grid": out.grid,
        }

    def encode_text(self, texts: list[str] | dict, with_dist: bool = True, extra: list[str] | None = None) -> dict:
        """Sentences -> global, tokens, word mask and PDT Gaussians. ``extra`` sentences (hard negatives) go
        through the same pass: in training mode the projections' BatchNorm then normalises them with the same
        batch statistics as ``texts``. Encoded in a pass of their own, they would differ from the sentences by
        those statistics alone, and a loss comparing the two could be met without reading a word. Their global
        embeddings come back as ``extra_global`` (none when ``extra`` is None)."""
        n = None
        if extra is not None:
            if isinstance(texts, dict):
                raise ValueError("extra sentences need the sentences as strings, not token ids")
            texts = [texts] if isinstance(texts, str) else list(texts)
            n = len(texts)
            texts = texts + list(extra)
        out = self.text(texts)
        sentence = self.text_global_proj(out.sentence)
        tokens, word_mask = out.tokens, out.word_mask
        if n is not None:
            tokens, word_mask = tokens[:n], word_mask[:n]
        tokens = self.text_token_proj(tokens, word_mask)
        return {
            "global": sentence[:n],
            "extra_global": None if n is None else sentence[n:],
            "tokens": tokens,
            "word_mask": word_mask,
            "dist": self.text_pdt(tokens, word_mask) if with_dist else None,
        }

    def forward(self, images: torch.Tensor, texts: list[str] | dict, with_dist: bool = True,
                extra_texts: list[str] | None = None) -> AMVLMEmbeddings:
        """``extra_texts``: sentences encoded in the same text pass (see :meth:`encode_text`), whose global
        embeddings land in ``extra_text_global``."""
        img = self.encode_image(images, with_dist)
        txt = self.encode_text(texts, with_dist, extra=extra_texts)
        if img["global"].shape[0] != txt["global"].shape[0]:
            raise ValueError(f"{img['global'].shape[0]} images but {txt['global'].shape[0]} sentences")
        return AMVLMEmbeddings(
            image_global=img["global"], image_tokens=img["tokens"], text_global=txt["global"],
            text_tokens=txt["tokens"], word_mask=txt["word_mask"], image_dist=img["dist"], text_dist=txt["dist"],
            grid=img["grid"], extra_text_global=txt["extra_global"],
        )

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(text encoder parameters being fine-tuned, every other trainable parameter)."""
        text_ids = {id(p) for p in self.text.parameters()}
        text = [p for p in self.text.parameters() if p.requires_grad]
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in text_ids]
        return text, rest
