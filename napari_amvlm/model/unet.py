"""U-Net segmenter of stage 2 (student and EMA teacher, GUIDE §2.2).

Shapes (L = ``cfg.levels``, c_l = ``cfg.base * 2**l``):

- input ``x``: (B, in_channels, H, W), values in [0, 1]; H and W divisible by d * 2**(L - 1), d = ``cfg.downsample``.
- working resolution: with d > 1 the input is averaged over d x d blocks first (the network runs at (H/d, W/d),
  about d² times fewer operations) and the logits are bilinearly up-sampled back to (H, W) at the end.
- normalisation inside the model: (x - mean) / std with the fixed per-channel ``cfg.mean`` / ``cfg.std``.
- encoder level l = 0..L-1: two [3x3 conv -> BatchNorm -> ReLU] blocks with c_l channels at resolution
  (H / 2**l, W / 2**l); a 2x2 max-pool between consecutive levels (L - 1 down-samplings).
- decoder level l = L-2..0: bilinear 2x up-sampling of the deeper features, concatenation with the encoder
  skip of level l (c_{l+1} + c_l channels), two [conv -> BN -> ReLU] blocks back to c_l channels.
- head: 1x1 conv c_0 -> out_channels.
- output: (B, out_channels, H, W) logits (apply a sigmoid for foreground probabilities).

Every operation keeps the ``torch.channels_last`` memory format, so ``model.to(memory_format=torch.channels_last)``
with channels-last inputs works (and is faster on GPUs with autocast).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import UNetConfig


class ConvBlock(nn.Sequential):
    """Two [3x3 conv (no bias) -> BatchNorm -> ReLU]: (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


def _channel_stats(values: tuple[float, ...], channels: int, name: str) -> torch.Tensor:
    """(1, channels, 1, 1) tensor of a per-channel statistic; one value is broadcast to every channel."""
    vals = tuple(float(v) for v in values)
    if len(vals) == 1:
        vals = vals * channels
    if len(vals) != channels:
        raise ValueError(f"UNetConfig.{name} has {len(vals)} values but in_channels is {channels}")
    if name == "std" and min(vals) <= 0:
        raise ValueError(f"UNetConfig.std must be positive, got {vals}")
    return torch.tensor(vals, dtype=torch.float32).view(1, channels, 1, 1)


class UNet(nn.Module):
    """U-Net: (B, in_channels, H, W) images in [0, 1] -> (B, out_channels, H, W) logits (see module doc)."""

    def __init__(self, cfg: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else UNetConfig()
        if min(cfg.levels, cfg.base, cfg.in_channels, cfg.out_channels, cfg.downsample) < 1:
            raise ValueError(f"UNetConfig needs levels, base, in_channels, out_channels, downsample >= 1, got {cfg}")
        self.cfg = cfg
        # fixed normalisation from the config, not trained and not saved (the config is saved next to the weights)
        self.register_buffer("mean", _channel_stats(cfg.mean, cfg.in_channels, "mean"), persistent=False)
        self.register_buffer("std", _channel_stats(cfg.std, cfg.in_channels, "std"), persistent=False)
        widths = [cfg.base * 2**level for level in range(cfg.levels)]
        self.encoders = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([cfg.in_channels, *widths[:-1]], widths)
        )
        # decoders[i] produces level L-2-i from level L-1-i and the skip of level L-2-i
        self.decoders = nn.ModuleList(
            ConvBlock(widths[level + 1] + widths[level], widths[level]) for level in reversed(range(cfg.levels - 1))
        )
        self.head = nn.Conv2d(widths[0], cfg.out_channels, 1)

    @property
    def size_multiple(self) -> int:
        """H and W of the input must be multiples of this (downsample * 2**(levels - 1))."""
        return self.cfg.downsample * 2 ** (self.cfg.levels - 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the problem when ``x`` is not (B, in_channels, H, W) with H, W multiples."""
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(
                f"UNet expects (B, {self.cfg.in_channels}, H, W) images, got shape {tuple(x.shape)}"
            )
        m = self.size_multiple
        h, w = x.shape[-2:]
        if h % m or w % m or h == 0 or w == 0:
            raise ValueError(
                f"UNet with {self.cfg.levels} levels (downsample {self.cfg.downsample}) needs H and W divisible by "
                f"{m}, got {h}x{w}; "
                f"pad or resize the image (e.g. to {max(m, -(-h // m) * m)}x{max(m, -(-w // m) * m)})"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [0, 1] -> (B, out_channels, H, W) logits."""
        self.check_input(x)
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.cfg.downsample > 1:
            h = F.avg_pool2d(h, self.cfg.downsample)
        skips: list[torch.Tensor] = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                h = F.max_pool2d(h, 2)
            h = encoder(h)
            skips.append(h)
        h = skips.pop()
        for decoder in self.decoders:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = decoder(torch.cat([h, skip], dim=1))
        logits = self.head(h)
        if self.cfg.downsample > 1:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits
