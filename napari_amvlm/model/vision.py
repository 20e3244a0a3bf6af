"""Vision encoder: a ViT with a CLS token and, by default, a strided convolutional stem.

With ``cfg.unet_stem`` the tower is a hybrid: the encoder half of a U-Net (the same blocks as
:class:`napari_amvlm.model.unet.UNet`) turns the image into a (patch grid x patch grid) feature map, a 1x1
convolution makes the tokens, and the transformer adds the CLS token and global context. Its stem can start from
a trained segmenter's U-Net encoder (:func:`load_unet_stem`), which a ViT trained from scratch on a CPU budget
cannot match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import VisionConfig
from .outputs import VisionOutput
from .unet import ConvBlock


class ConvStem(nn.Module):
    """Convolutional stem with one token per patch: a (patch/4)-strided patchify convolution, then two stride-2
    3x3 convolutions (BN, GELU) ending at ``width`` channels. Cheaper than a full stride-2 stack at full
    resolution, and still better than a single linear patch projection when training from scratch."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        if cfg.patch_size < 4:
            raise ValueError("the conv stem needs patch_size >= 4")
        first = cfg.patch_size // 4
        c1, c2 = max(cfg.width // 4, 16), max(cfg.width // 2, 16)
        self.body = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, first, stride=first, bias=False), nn.BatchNorm2d(c1), nn.GELU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.GELU(),
            nn.Conv2d(c2, cfg.width, 3, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNetStem(nn.Module):
    """U-Net encoder levels down to the patch grid, then a 1x1 convolution to ``width`` channels.

    (B, C, S, S) normalised images -> average over stem_downsample² blocks -> L = log2(patch / downsample) + 1
    levels of ConvBlock (widths stem_base * 2**l, 2x2 max-pool between levels) -> (B, width, S/patch, S/patch).
    The module names match ``UNet.encoders`` so that a trained U-Net's encoder loads into ``encoders``.
    """

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.downsample = cfg.stem_downsample
        levels = (cfg.patch_size // cfg.stem_downsample).bit_length()
        widths = [cfg.stem_base * 2**level for level in range(levels)]
        self.encoders = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([cfg.in_channels, *widths[:-1]], widths))
        self.proj = nn.Conv2d(widths[-1], cfg.width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
        return self.proj(x)


def load_unet_stem(vision: VisionEncoder, unet_state: dict[str, torch.Tensor], source: str) -> int:
    """Copy a trained U-Net's encoder levels (``encoders.*`` tensors of a UNet state dict) into a hybrid tower's
    stem; returns how many tensors were copied. Refuses a tower without a U-Net stem or weights that do not fit."""
    if not isinstance(vision.stem, UNetStem):
        raise ValueError("this vision tower has no U-Net stem (VisionConfig.unet_stem is off)")
    own = vision.stem.encoders.state_dict()
    picked = {k[len("encoders."):]: v for k, v in unet_state.items()
              if k.startswith("encoders.") and k[len("encoders."):] in own}
    bad = [k for k, v in own.items() if k not in picked or picked[k].shape != v.shape]
    if bad:
        raise ValueError(f"{source}: the U-Net does not fit the stem (e.g. {', '.join(bad[:3])}); use the same "
                         "base, and stem_downsample equal to the U-Net's downsample")
    vision.stem.encoders.load_state_dict(picked)
    return len(picked)


def sincos_2d(grid: int, width: int) -> torch.Tensor:
    """Fixed position codes (grid*grid, width) for a row-major patch grid: a quarter of the channels is sin(row w_k),
    a quarter cos(row w_k), then the same for the column, with w_k = 10000^(-k / (width/4)), k = 0 .. width/4 - 1."""
    if width % 4:
        raise ValueError(f"sine-cosine position codes need a width divisible by 4, got {width}")
    quarter = width // 4
    omega = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    r, c = rows.reshape(-1, 1) * omega, cols.reshape(-1, 1) * omega
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1).float()


class Block(nn.Module):
    """Pre-norm transformer block (self-attention + MLP)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisionEncoder(nn.Module):
    """ViT: image (B, C, H, W) in [0, 1] -> CLS (B, D) and patch tokens (B, P, D)."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.unet_stem:
            self.stem: nn.Module = UNetStem(cfg)
        elif cfg.conv_stem:
            self.stem = ConvStem(cfg)
        else:
            self.stem = nn.Conv2d(cfg.in_channels, cfg.width, cfg.patch_size, stride=cfg.patch_size)
        n = cfg.grid * cfg.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, cfg.width) * 0.02)
        # Fixed codes (CLS row zero), not stored: a learned embedding alone stays near its 0.02 start under AdamW
        # while the U-Net stem's tokens are ~10x larger, so attention barely sees where a patch is.
        fixed = torch.zeros(1, n + 1, cfg.width)
        if cfg.pos_sincos:
            fixed[0, 1:] = sincos_2d(cfg.grid, cfg.width)
        self.register_buffer("pos_fixed", fixed, persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, -1, 1, 1), persistent=False)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, images: torch.Tensor) -> VisionOutput:
        cfg = self.cfg
        if images.ndim != 4 or images.shape[1] != cfg.in_channels:
            raise ValueError(f"expected images of shape (B, {cfg.in_channels}, H, W), got {tuple(images.shape)}")
        if images.shape[-2:] != (cfg.image_size, cfg.image_size):
            raise ValueError(f"expected {cfg.image_size}x{cfg.image_size} images, got {tuple(images.shape[-2:])}")
        x = self.stem((images - self.mean) / self.std)  # (B, D, g, g)
        b, d, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, P, D)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.pos_embed + self.pos_fixed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return VisionOutput(cls=x[:, 0], patches=x[:, 1:], grid=(gh, gw))
