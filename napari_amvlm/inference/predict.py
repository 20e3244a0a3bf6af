"""Prompt -> mask, probability and uncertainty, with an embedding cache.

For an image and a prompt: P = teacher (U-Net) probability, T = text mask for the prompt, and the mask is
``fuse(P, T) > 0.5`` — the same fusion as the pseudo-labels. P and the dense embeddings F depend only on the
image, so they are cached: a second prompt on the same image runs only the text encoder and a dot product.

With the model's ``flip_average`` setting, P and T are each the mean of the image's and its left-right mirror's
(the mirror read with the sentence's sides swapped, its probabilities mirrored back): the prediction for a mirrored
image and mirrored sentence is then exactly the mirrored prediction.

Uncertainty (what to correct first): 1/2 |P - T| (teacher and text disagree) + 1/2 (1 - |2 fused - 1|)
(fused probability near 0.5), both in [0, 1].

Before anything runs, the image is checked (:func:`napari_amvlm.data.pixels.check_image`: too small, NaN/inf or
constant images are refused) and the prompt is prepared once (:func:`napari_amvlm.inference.prompts.prepare_prompt`: the side
convention, words the model cannot read, the token limit); the mask can then be cleaned up
(:func:`napari_amvlm.inference.postprocess.clean_mask`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.pixels import check_image, to_model_input
from ..data.text import flip_text_horizontal
from .fusion import fuse
from .postprocess import Cleanup, clean_mask
from .prompts import PreparedPrompt, prepare_prompt, read_vocabulary

MODES = ("fused", "segmenter", "textmask")


@dataclass
class Prediction:
    mask: np.ndarray  # (H, W) bool at the input image's size
    prob: np.ndarray  # (H, W) float32 probability that was thresholded
    uncertainty: np.ndarray  # (H, W) float32 in [0, 1]
    teacher_prob: np.ndarray | None  # (H, W) float32 P
    text_prob: np.ndarray | None  # (H, W) float32 T (None without a text-mask generator)
    prompt: PreparedPrompt | None = None  # what the model read for the prompt (None in mode "segmenter")
    cleaned: bool = False  # the mask went through clean_mask

    @property
    def notices(self) -> list[str]:
        """What the model ignored of the prompt, one line each (empty when it read everything)."""
        return self.prompt.notices if self.prompt is not None else []


def check_mode(seg, mode: str) -> None:
    """Refuse an unknown mode, or a text mode on a model trained without the text-mask generator."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode != "segmenter" and seg.textmask is None:
        raise ValueError("this model has no text-mask generator (trained with --no-text): use mode 'segmenter'")


@torch.inference_mode()
def batch_probabilities(seg, images: torch.Tensor, texts: list[str] | None, mode: str = "fused") -> torch.Tensor:
    """Probabilities (B, 1, S, S) for model-sized images (B, 3, S, S) in [0, 1] and their own sentences; with the
    model's ``flip_average``, the mean with the mirrored images' (sides swapped in the sentences), mirrored back."""
    check_mode(seg, mode)
    p = _probabilities(seg, images, texts, mode)
    if not seg.cfg.flip_average:
        return p
    mirrored = None if texts is None else [flip_text_horizontal(t) for t in texts]
    return 0.5 * (p + _probabilities(seg, images.flip(-1), mirrored, mode).flip(-1))


def _probabilities(seg, images: torch.Tensor, texts: list[str] | None, mode: str) -> torch.Tensor:
    if mode == "segmenter":
        return torch.sigmoid(seg.unet(images))
    tokens, grid, sentence = seg.frozen_embeddings(images, texts)
    t = seg.textmask(tokens, grid, sentence, images.shape[-2:], texts).prob
    if mode == "textmask":
        return t
    return fuse(torch.sigmoid(seg.unet(images)), t, seg.cfg.fusion_lambda)


def _mirror_mean(x: torch.Tensor) -> torch.Tensor:
    """x (1, ...) unchanged; x (2, ...), an image's result and its mirror's, -> (1, ...) their mean, the mirror's
    mirrored back."""
    return x if len(x) == 1 else 0.5 * (x[:1] + x[1:].flip(-1))


def image_key(image: np.ndarray) -> str:
    """Content hash of an image array (cache key)."""
    h = hashlib.sha1(np.ascontiguousarray(image).view(np.uint8))
    h.update(str((image.shape, image.dtype.str)).encode())
    return h.hexdigest()


class Segmenter:
    """Interactive inference over one loaded model with an LRU cache of image embeddings."""

    def __init__(self, seg, device: str | torch.device = "cpu", cache_size: int = 32,
                 vocabulary: frozenset[str] | None = None):
        self.seg = seg.to(device).eval()
        self.device = torch.device(device)
        self.size = seg.amvlm.cfg.vision.image_size
        self.patch_size = seg.amvlm.cfg.vision.patch_size
        self.vocabulary = vocabulary  # the training vocabulary (None: unknown, every Latin word is read)
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self.cache_size = cache_size
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def from_folder(cls, folder, device: str | torch.device = "cpu", **kwargs) -> Segmenter:
        """Load a model folder (with its training vocabulary, when it has one) for inference."""
        from ..model.hub import load_segmenter

        return cls(load_segmenter(folder, device), device, vocabulary=read_vocabulary(folder), **kwargs)

    def prepare(self, prompt: str, sides: str = "image") -> PreparedPrompt:
        """What this model reads for ``prompt`` written in the ``sides`` convention (see :mod:`.prompts`)."""
        text = self.seg.amvlm.text
        return prepare_prompt(prompt, sides, self.vocabulary, text.tokenizer, text.cfg.max_length)

    @torch.inference_mode()
    def _image_state(self, image: np.ndarray) -> dict:
        key = image_key(image)
        if key in self._cache:
            self.cache_hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.cache_misses += 1
        x = torch.from_numpy(to_model_input(image, self.size))[None].to(self.device)
        if self.seg.cfg.flip_average:  # the image and its mirror in one batch
            x = torch.cat([x, x.flip(-1)])
        p = torch.sigmoid(self.seg.unet(x))
        state = {"P": _mirror_mean(p), "shape": image.shape[:2]}
        if self.seg.textmask is not None:
            img = self.seg.amvlm.encode_image(x, with_dist=False)
            state["F"] = self.seg.textmask.dense(img["tokens"], img["grid"])  # (1 or 2, ...): image [, mirror]
        self._cache[key] = state
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return state

    @torch.inference_mode()
    def predict(self, image: np.ndarray, prompt: str | None, mode: str = "fused", threshold: float = 0.5,
                sides: str = "image", cleanup: Cleanup | None = None) -> Prediction:
        """Segment one 2D image (gray, RGB or 16-bit) for a prompt written in the ``sides`` convention; results at
        the image's own size. With ``cleanup``, the mask goes through :func:`.postprocess.clean_mask`. Raises
        :class:`...data.pixels.ImageError` for an image it cannot segment meaningfully, ValueError for a prompt it
        cannot read."""
        check_mode(self.seg, mode)
        prepared = self.prepare(prompt, sides) if mode != "segmenter" else None
        check_image(image, self.patch_size)
        st = self._image_state(image)
        p = prob = st["P"]
        t = None
        if prepared is not None:
            t = prob = self._text_prob(st, prepared.text)
        if mode == "fused":
            prob = fuse(p, t, self.seg.cfg.fusion_lambda)
        unc = 1.0 - (2 * prob - 1).abs()
        if t is not None:
            unc = 0.5 * unc + 0.5 * (p - t).abs()
        out = [self._to_image(x, st["shape"]) if x is not None else None for x in (prob, unc, p, t)]
        mask = out[0] > threshold
        if cleanup is not None:
            mask = clean_mask(mask, image, cleanup)
        return Prediction(mask=mask, prob=out[0], uncertainty=out[1], teacher_prob=out[2], text_prob=out[3],
                          prompt=prepared, cleaned=cleanup is not None)

    def _text_prob(self, st: dict, text: str) -> torch.Tensor:
        """T (1, 1, S, S) for the cached image: with a mirror in the cache, the mean of the image's T and the
        mirror's T for the side-swapped sentence, mirrored back."""
        texts = [text, flip_text_horizontal(text)][: len(st["F"])]
        sentences = self.seg.amvlm.encode_text(texts, with_dist=False)["global"]
        t = self.seg.textmask.from_dense(st["F"], sentences, st["P"].shape[-2:], texts).prob
        return _mirror_mean(t)

    @staticmethod
    def _to_image(x: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
        x = F.interpolate(x.float(), size=tuple(shape), mode="bilinear", align_corners=False)
        return x[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)
