"""Embeddings of the frozen AMVLM, computed once per training image (and flip) and once per sentence.

Stage 2 never trains the AMVLM and its training images change only by horizontal flips, so each image's patch
tokens take two values and each sentence embedding one. Recomputing them at every step made the frozen
vision-language model the largest cost of a text-guided step at the U-Net's half resolution; this cache
computes each once and keeps it (tokens as float16: 196 x 128 x 2 bytes = 50 kB per image and flip).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch


class FrozenEmbeddings:
    """``cache(images, keys, texts)`` -> (patch tokens (B, P, E), grid, sentence embeddings (B, E)).

    ``keys`` name each image's content (e.g. (dataset index, flipped)); an image whose key was seen before is
    not encoded again. ``seg`` is the stage-2 segmenter whose ``amvlm`` is frozen and in eval mode.
    """

    def __init__(self, seg) -> None:
        self.seg = seg
        self.tokens: dict[Hashable, torch.Tensor] = {}
        self.sentences: dict[str, torch.Tensor] = {}
        self.grid: tuple[int, int] | None = None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, keys: Sequence[Hashable], texts: Sequence[str]):
        if len(keys) != images.shape[0] or len(texts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images, {len(keys)} keys and {len(texts)} sentences")
        missing = [i for i, k in enumerate(keys) if k not in self.tokens]
        if missing:
            img = self.seg.amvlm.encode_image(images[missing], with_dist=False)
            self.grid = img["grid"]
            for i, tok in zip(missing, img["tokens"]):
                self.tokens[keys[i]] = tok.to(torch.float16)
        new = sorted({t for t in texts if t not in self.sentences})
        if new:
            emb = self.seg.amvlm.encode_text(new, with_dist=False)["global"]
            self.sentences.update(zip(new, emb.float()))
        tokens = torch.stack([self.tokens[k] for k in keys]).to(images.device, torch.float32)
        sentence = torch.stack([self.sentences[t] for t in texts]).to(images.device)
        return tokens, self.grid, sentence
