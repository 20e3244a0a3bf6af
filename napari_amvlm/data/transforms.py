"""Augmentations on CHW torch tensors that keep the caption true (GUIDE §2.6).

Flips rewrite the caption (left <-> right, upper <-> lower); rotation and random-resized crop cannot be
rewritten, so they are skipped when the caption is positional. Intensity changes never move content.
All randomness comes from an optional ``torch.Generator``: the same seed gives the same result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .text import flip_text_horizontal, flip_text_vertical, is_positional


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn from ``generator`` (on its own device) and moved to ``device``."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal numbers drawn like :func:`_rand`."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(_rand((1,), generator, torch.device("cpu")))


def _affine(image: torch.Tensor, mask: torch.Tensor | None, theta: torch.Tensor):
    """Warp image (bilinear) and mask (nearest) with one 2x3 affine matrix in normalised coordinates."""
    grid = F.affine_grid(theta[None].to(image.dtype), [1, *image.shape], align_corners=False)
    image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    if mask is not None:
        m = mask if mask.ndim == 3 else mask[None]
        m = F.grid_sample(m[None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        mask = m if mask.ndim == 3 else m[0]
    return image, mask


def _jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, gamma: torch.Tensor):
    """Gamma, then contrast around the per-image mean, then additive brightness; clipped to [0, 1].

    Parameters broadcast against ``x`` (shape (B, 1, 1, 1) for a batch, scalars for one image).
    """
    x = x.clamp(0.0, 1.0).pow(gamma)
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).clamp(0.0, 1.0)


class PairTransform:
    """Random flips, rotation, resized crop, intensity jitter and noise for an (image, mask, text) triple.

    ``image`` is float (C, H, W) in [0, 1]; ``mask`` is (1, H, W) or (H, W) or None; the caption follows
    the flips, and rotation/crop are skipped when :func:`is_positional` says the caption names a side.
    """

    def __init__(
        self,
        hflip_p: float = 0.5,
        vflip_p: float = 0.0,
        rotate_deg: float = 10.0,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        jitter: float = 0.1,
        noise_std: float = 0.02,
    ) -> None:
        if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self.hflip_p = hflip_p
        self.vflip_p = vflip_p
        self.rotate_deg = rotate_deg
        self.crop_scale = crop_scale
        self.jitter = jitter
        self.noise_std = noise_std

    def __repr__(self) -> str:
        return (
            f"PairTransform(hflip_p={self.hflip_p}, vflip_p={self.vflip_p}, rotate_deg={self.rotate_deg}, "
            f"crop_scale={self.crop_scale}, jitter={self.jitter}, noise_std={self.noise_std})"
        )

    def __call__(self, image, mask, text, generator: torch.Generator | None = None):
        return self.apply(image, mask, text, generator)[:3]

    def apply(self, image, mask, text, generator: torch.Generator | None = None):
        """Like calling the transform, plus the flips it made: (image, mask, text, (hflip, vflip))."""
        g = generator
        hflip = _uniform(0, 1, g) < self.hflip_p
        if hflip:
            image, mask, text = image.flip(-1), _flip(mask, -1), flip_text_horizontal(text)
        vflip = _uniform(0, 1, g) < self.vflip_p
        if vflip:
            image, mask, text = image.flip(-2), _flip(mask, -2), flip_text_vertical(text)
        angle = _uniform(-self.rotate_deg, self.rotate_deg, g)
        scale = _uniform(*self.crop_scale, g)
        shift = (_uniform(-1, 1, g), _uniform(-1, 1, g))
        if not is_positional(text) and (angle != 0.0 or scale != 1.0):
            image, mask = _affine(image, mask, _crop_rotate_theta(angle, scale, shift))
        image = self._intensity(image, g)
        return image, mask, text, (hflip, vflip)

    def _intensity(self, image: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Brightness/contrast/gamma jitter and Gaussian noise (image only), kept in [0, 1]."""
        j = self.jitter
        b, c, gm = _uniform(-j, j, g), 1.0 + _uniform(-j, j, g), math.exp(_uniform(-j, j, g))
        if j > 0:
            image = _jitter(image, torch.tensor(b), torch.tensor(c), torch.tensor(gm))
        if self.noise_std > 0:
            image = (image + self.noise_std * _randn(tuple(image.shape), g, image.device)).clamp(0.0, 1.0)
        return image


def _flip(mask: torch.Tensor | None, dim: int) -> torch.Tensor | None:
    return None if mask is None else mask.flip(dim)


def _crop_rotate_theta(angle_deg: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    """Affine matrix sampling a rotated square crop covering ``scale`` of the area, kept inside the image.

    ``shift`` in [-1, 1]² places the crop centre within the room left by the crop side ``sqrt(scale)``.
    """
    side = math.sqrt(scale)
    a = math.radians(angle_deg)
    cos, sin = math.cos(a) * side, math.sin(a) * side
    room = 1.0 - side
    return torch.tensor([[cos, -sin, shift[0] * room], [sin, cos, shift[1] * room]], dtype=torch.float32)


def _blur(images: torch.Tensor) -> torch.Tensor:
    """Approximate Gaussian blur (sigma ~1.15 px): two 3x3 box filters, edges averaged over valid pixels."""
    for _ in range(2):
        images = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    return images


def _signed_magnitude(n: int, strength: float, g: torch.Generator | None, device: torch.device):
    """Random values with |v| in [strength/4, strength] and a random sign, shaped (n, 1, 1, 1)."""
    mag = strength * (0.25 + 0.75 * _rand((n,), g, device))
    sign = torch.where(_rand((n,), g, device) < 0.5, -1.0, 1.0)
    return (mag * sign).view(n, 1, 1, 1)


def photometric_view(
    images: torch.Tensor, generator: torch.Generator | None = None, strength: float = 0.2
) -> torch.Tensor:
    """Geometry-preserving augmented view of a float [0, 1] batch (B, 3, H, W) for intra-modal learning.

    Per image: gamma ``exp(±s)``, contrast ``1 ± s``, brightness ``± s/2`` (each magnitude in [s/4, s]),
    then either a Gaussian-like blur (sigma ~1.15 px) or Gaussian noise (std s/4), clipped to [0, 1]. Works on the
    tensor's device and dtype without per-pixel Python loops. Raises for integer input or values outside
    [0, 1] (an un-normalised or 0-255 image would silently give a wrong view).
    """
    if images.ndim != 4:
        raise ValueError(f"photometric_view expects (B, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"photometric_view expects a float [0, 1] batch, got dtype {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(f"photometric_view expects values in [0, 1], got [{lo:.3g}, {hi:.3g}]")
    n, dev, s = images.shape[0], images.device, float(strength)
    x = images.detach()
    gamma = torch.exp(_signed_magnitude(n, s, generator, dev))
    contrast = 1.0 + _signed_magnitude(n, s, generator, dev)
    brightness = 0.5 * _signed_magnitude(n, s, generator, dev)
    x = _jitter(x, brightness.to(x.dtype), contrast.to(x.dtype), gamma.to(x.dtype))
    use_blur = (_rand((n,), generator, dev) < 0.5).view(n, 1, 1, 1)
    noisy = x + 0.25 * s * _randn(tuple(x.shape), generator, dev).to(x.dtype)
    x = torch.where(use_blur, _blur(x), noisy)
    return x.clamp(0.0, 1.0)
