"""Per-image Dice and IoU at threshold 0.5 at the model's size (224x224), averaged over images (GUIDE §2.5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data.dataset import ImageTextDataset
from .inference import batch_probabilities
from .metrics import dice_iou


@dataclass
class EvalResult:
    names: list[str] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)  # per image, in [0, 1]
    iou: list[float] = field(default_factory=list)

    @property
    def mean_dice(self) -> float:
        return 100.0 * float(np.mean(self.dice)) if self.dice else float("nan")

    @property
    def mean_iou(self) -> float:
        return 100.0 * float(np.mean(self.iou)) if self.iou else float("nan")

    def line(self) -> str:
        return f"dice={self.mean_dice:.2f} miou={self.mean_iou:.2f} n={len(self.dice)}"


@torch.inference_mode()
def evaluate(seg, data: str | Path | ImageTextDataset, mode: str = "fused", batch_size: int = 16,
             device: str | torch.device = "cpu", texts: list[str] | None = None) -> EvalResult:
    """Evaluate on a folder's images with each image's own sentence (or ``texts``, one per image)."""
    size = seg.amvlm.cfg.vision.image_size
    ds = data if isinstance(data, ImageTextDataset) else ImageTextDataset(data, size=size, require_masks=True)
    if texts is not None and len(texts) != len(ds):
        raise ValueError(f"{len(texts)} sentences for {len(ds)} images")
    seg = seg.to(device).eval()
    res = EvalResult()
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        sentences = [texts[it["index"]] if texts is not None else it["text"] for it in items]
        prob = batch_probabilities(seg, images, sentences, mode).cpu()
        for it, p in zip(items, prob):
            d, j = dice_iou(p[0].numpy() > 0.5, it["mask"][0].numpy() > 0.5)
            res.names.append(it["name"])
            res.dice.append(d)
            res.iou.append(j)
    return res
