"""Prompt -> mask, probability and uncertainty, with an embedding cache.

For an image and a prompt: P = teacher (U-Net) probability, T = text mask for the prompt, and the mask is
``fuse(P, T) > 0.5`` — the same fusion as the pseudo-labels. P and the dense embeddings F depend only on the
image, so they are cached: a second prompt on the same image runs only the text encoder and a dot product.

The image is read once into a typed :class:`~napari_amvlm.io.image.Image` (an array is wrapped on entry) and
checked (too small, NaN/inf or constant images are refused). The prompt is prepared once
(:func:`.prompts.prepare_prompt`) in the side convention :func:`.views.read_sides` chose from the image's
orientation: a patient-convention prompt on a mirrored or rotated film is read on the film turned into the standard
view. An image larger than the model's field (:mod:`.tiles`) is segmented by overlapping windows at the model's
scale, blended; the cache then holds every window's P and F. The mask can be cleaned up
(:func:`.postprocess.clean_mask`).

With the model's ``flip_average`` setting, P and T are each the mean of the image's and its left-right mirror's
(the mirror read with the sentence's sides swapped, its probabilities mirrored back): the prediction for a mirrored
image and mirrored sentence is then exactly the mirrored prediction.

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

from ..data.pixels import to_model_input
from ..data.text import flip_text_horizontal
from ..io.image import Image, as_image
from . import tiles
from .fusion import fuse
from .postprocess import Cleanup, clean_mask
from .prompts import PreparedPrompt, prepare_prompt, read_vocabulary
from .views import read_sides

MODES = ("fused", "segmenter", "textmask")
CACHE_BYTES = 512 * 2**20  # the embedding cache holds at most this much (it keeps the newest image whatever)
WINDOW_BATCH = 8  # windows of a large image run through the model this many at a time


@dataclass
class Prediction:
    mask: np.ndarray  # (H, W) bool at the input image's size
    prob: np.ndarray  # (H, W) float32 probability that was thresholded
    uncertainty: np.ndarray  # (H, W) float32 in [0, 1]
    teacher_prob: np.ndarray | None  # (H, W) float32 P
    text_prob: np.ndarray | None  # (H, W) float32 T (None without a text-mask generator)
    prompt: PreparedPrompt | None = None  # what the model read for the prompt (None in mode "segmenter")
    cleaned: bool = False  # the mask went through clean_mask
    sides_note: str = ""  # which side convention the prompt was read in, and why
    windows: int = 0  # overlapping windows the image was segmented by (0: the whole image in one input)

    @property
    def notices(self) -> list[str]:
        """What the model ignored of the prompt, one line each (empty when it read everything)."""
        return self.prompt.notices if self.prompt is not None else []


@dataclass
class _State:
    """What the cache keeps of one image: P at the model's scale, the dense embeddings of its windows."""

    P: torch.Tensor  # (1, 1, h, w) teacher probability (blended over the windows)
    F: torch.Tensor | None  # (n or 2n, E, h', w'): each window's dense embeddings [, then each mirror's]
    count: int  # n: windows (1 for the whole image)
    layout: tiles.Layout | None

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in (self.P, self.F) if t is not None)


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


def _mirror_mean(x: torch.Tensor, n: int) -> torch.Tensor:
    """x (n, ...) unchanged; x (2n, ...), n results then their mirrors' -> (n, ...) their means, each mirror's
    mirrored back."""
    return x if len(x) == n else 0.5 * (x[:n] + x[n:].flip(-1))


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
        self.field = seg.cfg.field  # pixels the model saw in one input (0: the whole image, any size)
        self.vocabulary = vocabulary  # the training vocabulary (None: unknown, every Latin word is read)
        self._cache: OrderedDict[str, _State] = OrderedDict()
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
    def predict(self, image: Image | np.ndarray, prompt: str | None, mode: str = "fused", threshold: float = 0.5,
                sides: str = "image", cleanup: Cleanup | None = None) -> Prediction:
        """Segment one 2D image (a typed :class:`Image`, or gray, RGB or 16-bit pixels) for a prompt written in the
        ``sides`` convention; results at the image's own size. With ``cleanup``, the mask goes through
        :func:`.postprocess.clean_mask`. Raises :class:`~napari_amvlm.io.image.ImageError` for an image it cannot
        segment meaningfully, ValueError for a prompt it cannot read."""
        check_mode(self.seg, mode)
        image = image if isinstance(image, Image) else as_image(image)
        view = read_sides(image.orientation, sides)
        prepared = self.prepare(prompt, view.sides) if mode != "segmenter" else None
        image.check(self.patch_size)
        shown = view.image(image)
        st = self._image_state(shown)
        p = prob = st.P
        t = None
        if prepared is not None:
            t = prob = self._text_prob(st, prepared.text)
        if mode == "fused":
            prob = fuse(p, t, self.seg.cfg.fusion_lambda)
        unc = 1.0 - (2 * prob - 1).abs()
        if t is not None:
            unc = 0.5 * unc + 0.5 * (p - t).abs()
        out = [view.undo(self._to_image(x, shown.shape)) if x is not None else None for x in (prob, unc, p, t)]
        mask = out[0] > threshold
        if cleanup is not None:
            mask = clean_mask(mask, image, cleanup)
        return Prediction(mask=mask, prob=out[0], uncertainty=out[1], teacher_prob=out[2], text_prob=out[3],
                          prompt=prepared, cleaned=cleanup is not None, sides_note=view.note,
                          windows=st.layout.count if st.layout else 0)

    def _image_state(self, image: Image) -> _State:
        key = f"{image.key}:{self.field}"
        if key in self._cache:
            self.cache_hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.cache_misses += 1
        lay = tiles.layout(image.shape, self.field, self.size)
        x = torch.from_numpy(to_model_input(image, self.size))[None] if lay is None else tiles.cut(image.unit, lay)
        n = len(x)
        if self.seg.cfg.flip_average:  # the windows and their mirrors in one batch
            x = torch.cat([x, x.flip(-1)])
        p, f = [], []
        for part in x.split(WINDOW_BATCH):
            part = part.to(self.device)
            p.append(torch.sigmoid(self.seg.unet(part)))
            if self.seg.textmask is not None:
                img = self.seg.amvlm.encode_image(part, with_dist=False)
                f.append(self.seg.textmask.dense(img["tokens"], img["grid"]))
        p = _mirror_mean(torch.cat(p), n)
        state = _State(p if lay is None else tiles.blend(p, lay), torch.cat(f) if f else None, n, lay)
        self._remember(key, state)
        return state

    def _remember(self, key: str, state: _State) -> None:
        self._cache[key] = state
        total = sum(s.nbytes for s in self._cache.values())
        while len(self._cache) > 1 and (len(self._cache) > self.cache_size or total > CACHE_BYTES):
            total -= self._cache.popitem(last=False)[1].nbytes

    def _text_prob(self, st: _State, text: str) -> torch.Tensor:
        """T (1, 1, h, w) for the cached image: with mirrors in the cache, the mean of each window's T and its
        mirror's T for the side-swapped sentence, mirrored back; windows blended."""
        texts = [text, flip_text_horizontal(text)][: len(st.F) // st.count]
        sentences = self.seg.amvlm.encode_text(texts, with_dist=False)["global"]
        index = torch.arange(len(texts), device=sentences.device).repeat_interleave(st.count)
        t = torch.cat([self.seg.textmask.from_dense(f, s, (self.size, self.size), [texts[i] for i in k.tolist()]).prob
                       for f, s, k in zip(st.F.split(WINDOW_BATCH), sentences[index].split(WINDOW_BATCH),
                                          index.split(WINDOW_BATCH))])
        t = _mirror_mean(t, st.count)
        return t if st.layout is None else tiles.blend(t, st.layout)

    @staticmethod
    def _to_image(x: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
        x = F.interpolate(x.float(), size=tuple(shape), mode="bilinear", align_corners=False)
        return x[0, 0].clamp(0, 1).cpu().numpy()
