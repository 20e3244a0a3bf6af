"""What a model folder may ask napari-amvlm to build, checked before anything is built or loaded.

A model folder may come from anyone: its ``config.json`` and ``segmenter.json`` name the sizes of every part, and
its text encoder folder names a vocabulary and a network. Each size has a range (wide enough for a GPU user's
ViT-B or ViT-L scale-up), the parts are counted on PyTorch's ``meta`` device (no memory), and the largest
activations are estimated, so that a folder declaring ``depth: 1000000`` or ``width: 8192`` is refused in
milliseconds with one line instead of allocating gigabytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import AMVLMConfig, SegmenterConfig

MAX_PARAMETERS = 600_000_000  # parameters of all the parts together (2.4 GB in float32; ViT-L is ~300 M)
MAX_ACTIVATION = 1 << 27  # values of the largest feature map or attention matrix, per image (512 MB in float32)
MAX_JSON_BYTES = 1 << 20  # a config file
MAX_WEIGHTS_BYTES = 4 * MAX_PARAMETERS + (64 << 20)  # a weights file: every parameter in float32, plus its header
MAX_TEXT_FILE_BYTES = 32 << 20  # each tokenizer file of a text encoder (vocabularies, merges, tokenizer.json)
MAX_PATCH_TOKENS = 4096  # patch tokens of the vision encoder
MAX_FIELD = 1 << 16  # SegmenterConfig.field, in pixels (it is at least the model's input size)

RANGES: dict[str, dict[str, tuple[float, float]]] = {  # inclusive bounds of each size, per config class
    "VisionConfig": {"image_size": (8, 1024), "patch_size": (2, 64), "in_channels": (1, 4), "width": (4, 2048),
                     "depth": (1, 48), "heads": (1, 64), "mlp_ratio": (0.25, 8), "stem_base": (1, 256),
                     "stem_downsample": (1, 16), "dropout": (0, 1)},
    "TextConfig": {"max_length": (2, 512), "trainable_layers": (0, 64)},
    "HeadConfig": {"embed_dim": (2, 4096), "hidden_dim": (2, 8192), "pdt_layers": (0, 24), "pdt_heads": (1, 64)},
    "LossConfig": {"temperature": (1e-4, 100)},
    "UNetConfig": {"in_channels": (1, 4), "base": (1, 256), "levels": (1, 8), "out_channels": (1, 16),
                   "downsample": (1, 16)},
    "TextMaskConfig": {"hidden": (1, 1024), "upsample": (1, 64), "prior_grid": (1, 256)},
    "SegmenterConfig": {"fusion_lambda": (0, 1)},
}  # fmt: skip
_TEXT_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")


def check_ranges(cfg: Any, where: str) -> None:
    """Every size of a (nested) config within :data:`RANGES`; a ValueError names the first one that is not."""
    bounds = RANGES.get(type(cfg).__name__, {})
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, where)
        elif f.name in bounds and not bounds[f.name][0] <= value <= bounds[f.name][1]:
            lo, hi = bounds[f.name]
            raise ValueError(f"{where}: {type(cfg).__name__}.{f.name} is {value}; it must be from {lo:g} to {hi:g}")


def parameters(build: Callable[[], nn.Module]) -> int:
    """Parameters of the module ``build()`` makes, counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def _check_total(total: int, where: str) -> None:
    if total > MAX_PARAMETERS:
        raise ValueError(f"{where}: the model it describes has {total:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} napari-amvlm loads")


def _check_activation(values: int, what: str, where: str) -> None:
    if values > MAX_ACTIVATION:
        raise ValueError(f"{where}: its {what} would hold {values:,} values per image, more than the "
                         f"{MAX_ACTIVATION:,} napari-amvlm allows")


def check_amvlm_config(cfg: AMVLMConfig, where: str) -> int:
    """Refuse an AMVLM config whose parts would be too large; returns their parameters (text encoder aside)."""
    from .matching import CrossAttentionMatcher
    from .pdt import PDTHead
    from .vision import VisionEncoder

    check_ranges(cfg, where)
    cfg.validate()
    v, h = cfg.vision, cfg.head
    tokens = (v.image_size // v.patch_size) ** 2 + 1
    if tokens > MAX_PATCH_TOKENS + 1:
        raise ValueError(f"{where}: {v.image_size // v.patch_size}x{v.image_size // v.patch_size} patches, more than "
                         f"the {MAX_PATCH_TOKENS} patch tokens napari-amvlm allows")
    _check_activation(tokens * tokens * v.heads, "vision attention", where)
    if v.unet_stem:
        _check_activation(v.stem_base * (v.image_size // v.stem_downsample) ** 2, "U-Net stem", where)
    total = parameters(lambda: VisionEncoder(v))
    total += 2 * parameters(lambda: PDTHead(h)) + 2 * parameters(lambda: CrossAttentionMatcher(h.embed_dim))
    total += 2 * parameters(lambda: _projection(v.width, h.hidden_dim, h.embed_dim))
    _check_total(total, where)
    return total


def _projection(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """The layers of :class:`.amvlm.Projection` (the image heads; ``amvlm`` itself is not imported here)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, out_dim))


def check_segmenter_config(cfg: SegmenterConfig, amvlm: AMVLMConfig, where: str, amvlm_parameters: int = 0) -> None:
    """Refuse a segmenter config whose U-Net or text-mask decoder would be too large for the AMVLM beneath it."""
    from .textmask import TextMaskGenerator
    from .unet import UNet

    check_ranges(cfg, where)
    u, t, size = cfg.unet, cfg.textmask, amvlm.vision.image_size
    if cfg.field and not size <= cfg.field <= MAX_FIELD:  # windows are never enlarged: no image grows
        raise ValueError(f"{where}: SegmenterConfig.field is {cfg.field}; it must be 0 or from the model's input "
                         f"size {size} to {MAX_FIELD}")
    _check_activation(u.base * (size // u.downsample) ** 2, "U-Net's first level", where)
    grid = size // amvlm.vision.patch_size
    _check_activation(t.hidden * (grid * t.upsample) ** 2, "text-mask decoder", where)
    total = amvlm_parameters + parameters(lambda: UNet(u))
    if cfg.use_text:
        total += parameters(lambda: TextMaskGenerator(amvlm.head.embed_dim, t))
    _check_total(total, where)


def check_file(path: Path, limit: int, what: str) -> None:
    """``path`` is a plain file (not a link to a device or a FIFO) of at most ``limit`` bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a plain file")
    if st.st_size > limit:
        raise ValueError(f"{path} is {st.st_size / 2**20:.0f} MiB, more than the {limit / 2**20:.0f} MiB a {what} "
                         "may have")


def read_json(path: Path, what: str) -> Any:
    """The JSON of a config file of at most :data:`MAX_JSON_BYTES`."""
    check_file(path, MAX_JSON_BYTES, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{path} is not valid JSON: {str(err)[:200] or 'nested too deeply'}") from None


def check_text_folder(folder: Path) -> None:
    """A HuggingFace text encoder folder within bounds: its config's sizes, its tokenizer files and weights."""
    cfg = read_json(folder / "config.json", "text encoder config")
    if not isinstance(cfg, dict):
        raise ValueError(f"{folder / 'config.json'} is not a text encoder config")
    sizes = {}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings",
                "num_attention_heads"):  # fmt: skip
        value = cfg.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**7:
            raise ValueError(f"{folder / 'config.json'}: {key} must be an integer from 0 to 10,000,000")
        sizes[key] = value
    d, inner = sizes["hidden_size"], sizes["intermediate_size"] or 4 * sizes["hidden_size"]
    total = (sizes["vocab_size"] + sizes["max_position_embeddings"]) * d
    total += sizes["num_hidden_layers"] * (4 * d * d + 2 * d * inner)
    _check_total(total, str(folder))
    for entry in folder.iterdir():
        if entry.is_dir():
            continue
        weights = entry.name.endswith(_TEXT_WEIGHTS)
        check_file(entry, MAX_WEIGHTS_BYTES if weights else MAX_TEXT_FILE_BYTES,
                   "text encoder's weights file" if weights else "text encoder's file")
