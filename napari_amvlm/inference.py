"""Prompt -> mask, probability and uncertainty, with an embedding cache.

For an image and a prompt: P = teacher (U-Net) probability, T = text mask for the prompt, and the mask is
``fuse(P, T) > 0.5`` — the same fusion as the pseudo-labels. P and the dense embeddings F depend only on the
image, so they are cached: a second prompt on the same image runs only the text encoder and a dot product.

Uncertainty (what to correct first): 1/2 |P - T| (teacher and text disagree) + 1/2 (1 - |2 fused - 1|)
(fused probability near 0.5), both in [0, 1].
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .data.io import to_model_input
from .fusion import fuse

MODES = ("fused", "segmenter", "textmask")


@dataclass
class Prediction:
    mask: np.ndarray  # (H, W) bool at the input image's size
    prob: np.ndarray  # (H, W) float32 probability that was thresholded
    uncertainty: np.ndarray  # (H, W) float32 in [0, 1]
    teacher_prob: np.ndarray | None  # (H, W) float32 P
    text_prob: np.ndarray | None  # (H, W) float32 T (None without a text-mask generator)


def check_mode(seg, mode: str) -> None:
    """Refuse an unknown mode, or a text mode on a model trained without the text-mask generator."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode != "segmenter" and seg.textmask is None:
        raise ValueError("this model has no text-mask generator (trained with --no-text): use mode 'segmenter'")


@torch.inference_mode()
def batch_probabilities(seg, images: torch.Tensor, texts: list[str] | None, mode: str = "fused") -> torch.Tensor:
    """Probabilities (B, 1, S, S) for model-sized images (B, 3, S, S) in [0, 1] and their own sentences."""
    check_mode(seg, mode)
    if mode == "segmenter":
        return torch.sigmoid(seg.unet(images))
    tokens, grid, sentence = seg.frozen_embeddings(images, texts)
    t = seg.textmask(tokens, grid, sentence, images.shape[-2:], texts).prob
    if mode == "textmask":
        return t
    return fuse(torch.sigmoid(seg.unet(images)), t, seg.cfg.fusion_lambda)


def image_key(image: np.ndarray) -> str:
    """Content hash of an image array (cache key)."""
    h = hashlib.sha1(np.ascontiguousarray(image).view(np.uint8))
    h.update(str((image.shape, image.dtype.str)).encode())
    return h.hexdigest()


class Segmenter:
    """Interactive inference over one loaded model with an LRU cache of image embeddings."""

    def __init__(self, seg, device: str | torch.device = "cpu", cache_size: int = 32):
        self.seg = seg.to(device).eval()
        self.device = torch.device(device)
        self.size = seg.amvlm.cfg.vision.image_size
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self.cache_size = cache_size
        self.cache_hits = 0
        self.cache_misses = 0

    @torch.inference_mode()
    def _image_state(self, image: np.ndarray) -> dict:
        key = image_key(image)
        if key in self._cache:
            self.cache_hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.cache_misses += 1
        x = torch.from_numpy(to_model_input(image, self.size))[None].to(self.device)
        state = {"P": torch.sigmoid(self.seg.unet(x)), "shape": image.shape[:2]}
        if self.seg.textmask is not None:
            img = self.seg.amvlm.encode_image(x, with_dist=False)
            state["F"] = self.seg.textmask.dense(img["tokens"], img["grid"])
        self._cache[key] = state
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return state

    @torch.inference_mode()
    def predict(self, image: np.ndarray, prompt: str | None, mode: str = "fused", threshold: float = 0.5
                ) -> Prediction:
        """Segment one 2D image (gray, RGB or 16-bit) for a prompt; results at the image's own size."""
        check_mode(self.seg, mode)
        if mode != "segmenter" and (prompt is None or not str(prompt).strip()):
            raise ValueError("the prompt is empty: describe what to segment")
        st = self._image_state(image)
        p = prob = st["P"]
        t = None
        if mode != "segmenter":
            sentence = self.seg.amvlm.encode_text([str(prompt)], with_dist=False)["global"]
            t = prob = self.seg.textmask.from_dense(st["F"], sentence, p.shape[-2:], [str(prompt)]).prob
        if mode == "fused":
            prob = fuse(p, t, self.seg.cfg.fusion_lambda)
        unc = 1.0 - (2 * prob - 1).abs()
        if t is not None:
            unc = 0.5 * unc + 0.5 * (p - t).abs()
        out = [self._to_image(x, st["shape"]) if x is not None else None for x in (prob, unc, p, t)]
        return Prediction(mask=out[0] > threshold, prob=out[0], uncertainty=out[1], teacher_prob=out[2],
                          text_prob=out[3])

    @staticmethod
    def _to_image(x: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
        x = F.interpolate(x.float(), size=tuple(shape), mode="bilinear", align_corners=False)
        return x[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)
