"""Large images at the model's own scale: overlapping windows, blended.

A model folder records the field it learned to see whole (``SegmenterConfig.field``, in pixels: the MoNuSeg model
saw 1000-pixel H&E tiles at 40x, each resized to its 224-pixel input). An image whose side exceeds that field is
not squeezed into one input: it is resized by ``input / field`` (so a field becomes one input), cut into windows
of the input's size that overlap by :data:`OVERLAP`, each window is segmented, and the windows' probabilities are
blended with a Gaussian weight that trusts each window's centre more than its border (the ``gaussian`` mode of
MONAI's and nnU-Net's sliding-window inference). An image that fits in the field takes the whole-image path
unchanged; a model with field 0 (the chest X-ray model: the whole film) always does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

OVERLAP = 0.25  # fraction of a window shared with each neighbour
SIGMA = 0.125  # the blending Gaussian's standard deviation, as a fraction of the window side
FLOOR = 1e-3  # smallest blending weight (a window's corner still counts where it is alone)


@dataclass(frozen=True)
class Layout:
    """Where the windows of one image lie, in the image resized to the model's scale."""

    shape: tuple[int, int]  # the image's own (H, W)
    scaled: tuple[int, int]  # (h, w): the image at the model's scale
    padded: tuple[int, int]  # (h, w) padded (by reflection) to at least one window a side
    window: int  # the model's input side
    corners: tuple[tuple[int, int], ...]  # (y, x) of each window's top-left corner in the padded image

    @property
    def count(self) -> int:
        return len(self.corners)


def starts(length: int, window: int, overlap: float = OVERLAP) -> list[int]:
    """Window starts covering [0, length) with windows of ``window`` overlapping by at least ``overlap``."""
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    n = math.ceil((length - window) / stride) + 1
    return sorted({round(i * (length - window) / (n - 1)) for i in range(n)})


def layout(shape: tuple[int, int], field: int, window: int) -> Layout | None:
    """The windows of an image of ``shape`` for a model that sees ``field`` pixels in its ``window``-pixel input;
    None when the image fits in the field (or the field is 0): the whole-image path."""
    h, w = shape
    if field <= 0 or max(h, w) <= field:
        return None
    scale = window / field
    scaled = (max(1, round(h * scale)), max(1, round(w * scale)))
    padded = (max(scaled[0], window), max(scaled[1], window))
    corners = tuple((y, x) for y in starts(padded[0], window) for x in starts(padded[1], window))
    return Layout(tuple(shape), scaled, padded, window, corners)


def weights(window: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(window, window) Gaussian blending weight, 1 at the centre, at least :data:`FLOOR`."""
    t = torch.arange(window, dtype=torch.float32, device=device) - (window - 1) / 2
    g = torch.exp(-0.5 * (t / (SIGMA * window)) ** 2)
    return (g[:, None] * g[None, :]).clamp_min(FLOOR)


def cut(unit: np.ndarray, lay: Layout) -> torch.Tensor:
    """(N, 3, window, window) float32 windows of ``unit`` ((H, W) or (H, W, 3) in [0, 1]) at the model's scale."""
    import skimage.transform

    x = unit if unit.ndim == 3 else unit[..., None]
    x = skimage.transform.resize(x, (*lay.scaled, x.shape[-1]), order=1, anti_aliasing=True, preserve_range=True)
    pad = ((0, lay.padded[0] - lay.scaled[0]), (0, lay.padded[1] - lay.scaled[1]), (0, 0))
    if any(p[1] for p in pad):
        x = np.pad(x, pad, mode="reflect" if min(lay.scaled) > 1 else "edge")
    t = torch.from_numpy(np.clip(x, 0, 1).astype(np.float32)).permute(2, 0, 1)
    t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
    s = lay.window
    return torch.stack([t[:, y:y + s, x0:x0 + s] for y, x0 in lay.corners]).contiguous()


@functools.lru_cache(maxsize=8)
def _total_weight(lay: Layout, device: str) -> torch.Tensor:
    """(1, 1, *padded): the sum of the windows' weights at each pixel (one layout, many prompts)."""
    s, wt = lay.window, weights(lay.window, device)
    norm = torch.zeros((1, 1, *lay.padded), device=device)
    for y, x in lay.corners:
        norm[0, 0, y:y + s, x:x + s] += wt
    return norm


def blend(windows: torch.Tensor, lay: Layout) -> torch.Tensor:
    """(1, C, h, w) at the model's scale (padding cropped) from per-window maps (N, C, window, window)."""
    n, c, s, _ = windows.shape
    if n != lay.count or s != lay.window:
        raise ValueError(f"{n} windows of {s} px do not match a layout of {lay.count} windows of {lay.window} px")
    weighted = windows * weights(s, windows.device)
    total = windows.new_zeros((1, c, *lay.padded))
    for (y, x), win in zip(lay.corners, weighted):
        total[0, :, y:y + s, x:x + s] += win
    return (total / _total_weight(lay, str(windows.device)))[..., : lay.scaled[0], : lay.scaled[1]]


def to_shape(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(1, C, h, w) resized bilinearly to (1, C, *shape)."""
    return x if tuple(x.shape[-2:]) == tuple(shape) else F.interpolate(x, size=tuple(shape), mode="bilinear",
                                                                       align_corners=False)
