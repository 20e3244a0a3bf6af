"""Per-image Dice and IoU at threshold 0.5 at the model's size (224x224), averaged over images (GUIDE §2.5), and
the zone check: on images whose sentence names only upper (or only lower) lung zones, where the mask's mass lies.

Zones are thirds of the lung field's height, not of the image's: chest X-rays show neck and abdomen too. The lung
field's rows are measured on the folder itself, as the mean first and last foreground row of the masks whose
sentence names all three zones (on QaTa valid: 14 % to 75 % of the image height; see :func:`lung_rows`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data.dataset import ImageTextDataset
from .data.text import flip_text_vertical
from .inference import batch_probabilities
from .inference.postprocess import Cleanup, clean_mask
from .inference.prompts import to_model_sides
from .io import read_mask
from .metrics import dice_iou

ZONES = ("upper", "middle", "lower")
_ZONE_RE = re.compile(r"\b(upper|middle|lower)\b", re.IGNORECASE)


@dataclass
class EvalResult:
    names: list[str] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)  # per image, in [0, 1]
    iou: list[float] = field(default_factory=list)
    zone_shares: list[np.ndarray] = field(default_factory=list)  # per image: mask share in each zone (with rows)

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
             device: str | torch.device = "cpu", texts: list[str] | None = None, sides: str = "image",
             cleanup: Cleanup | None = None, zone_rows: tuple[float, float] | None = None) -> EvalResult:
    """Evaluate on a folder's images with each image's own sentence (or ``texts``, one per image), read in the
    ``sides`` convention; masks cleaned up with ``cleanup`` when given. With ``zone_rows`` (the lung field, see
    :func:`lung_rows`) the share of each mask in each zone is kept too."""
    size = seg.amvlm.cfg.vision.image_size
    ds = data if isinstance(data, ImageTextDataset) else ImageTextDataset(data, size=size, require_masks=True)
    if texts is not None and len(texts) != len(ds):
        raise ValueError(f"{len(texts)} sentences for {len(ds)} images")
    seg = seg.to(device).eval()
    res = EvalResult()
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        sentences = [to_model_sides(texts[it["index"]] if texts is not None else it["text"], sides) for it in items]
        prob = batch_probabilities(seg, images, sentences, mode).cpu()
        for it, p in zip(items, prob):
            pred = p[0].numpy() > 0.5
            if cleanup is not None:
                pred = clean_mask(pred, it["image"].numpy().transpose(1, 2, 0), cleanup)
            d, j = dice_iou(pred, it["mask"][0].numpy() > 0.5)
            res.names.append(it["name"])
            res.dice.append(d)
            res.iou.append(j)
            if zone_rows is not None:
                res.zone_shares.append(zone_shares(pred, zone_rows))
    return res


# ------------------------------------------------------------------------------------------------------ zones
def named_zones(text: str) -> set[str]:
    """The lung zones a sentence names: a subset of {"upper", "middle", "lower"}."""
    return {z.lower() for z in _ZONE_RE.findall(text)}


def lung_rows(ds: ImageTextDataset) -> tuple[float, float]:
    """The lung field's top and bottom as fractions of the image height: the mean first and last foreground row of
    the folder's masks whose sentence names all three zones ((0, 1) when there are none)."""
    tops, bottoms = [], []
    for rec in ds.records:
        if named_zones(rec.text) != set(ZONES) or rec.mask is None:
            continue
        mask = read_mask(rec.mask)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size:
            tops.append(rows[0] / mask.shape[0])
            bottoms.append((rows[-1] + 1) / mask.shape[0])
    return (float(np.mean(tops)), float(np.mean(bottoms))) if tops else (0.0, 1.0)


def zone_shares(mask: np.ndarray, rows: tuple[float, float]) -> np.ndarray:
    """Share of the mask's pixels in the upper, middle and lower third of the lung field ``rows`` (rows above the
    field count as upper, below as lower); zeros for an empty mask."""
    h = mask.shape[0]
    edges = rows[0] + (rows[1] - rows[0]) * np.array([1 / 3, 2 / 3])
    centres = (np.arange(h) + 0.5) / h
    zone = np.searchsorted(edges, centres)  # 0 upper, 1 middle, 2 lower
    counts = np.bincount(zone, weights=mask.sum(axis=1).astype(float), minlength=3)
    total = counts.sum()
    return counts / total if total else counts


@dataclass
class ZoneRow:
    """One group of the zone figure: images whose sentence names only ``zone``, with the true sentence and with
    the zone words swapped (upper <-> lower) as the control."""

    zone: str
    n: int
    dice: float  # mean Dice (%), true sentence
    dice_swapped: float
    share: float  # mean share (%) of the mask in the named third, true sentence
    share_swapped: float  # ... with the zone words swapped
    hit: float  # % of images whose mask has more mass in the named third than in either other one
    hit_swapped: float
    shares: list[float]  # mean share (%) in the upper, middle and lower third, true sentence

    @property
    def holds(self) -> bool:
        """The goal: with the true sentence the named third holds more of the mask, on average, than each other."""
        k = ZONES.index(self.zone)
        return all(self.shares[k] > s for j, s in enumerate(self.shares) if j != k)


def zone_figure(seg, ds: ImageTextDataset, zones: tuple[str, ...] = ("upper", "lower"), limit: int | None = None,
                device: str | torch.device = "cpu", cleanup: Cleanup | None = None, mode: str = "fused"
                ) -> tuple[tuple[float, float], list[ZoneRow]]:
    """(lung field rows, one :class:`ZoneRow` per zone) on the images of ``ds`` whose sentence names that zone
    only (the first ``limit`` of each group)."""
    rows = lung_rows(ds)
    out = []
    for zone in zones:
        idx = [i for i, t in enumerate(ds.texts) if named_zones(t) == {zone}][:limit]
        if not idx:
            continue
        texts = [ds.texts[i] for i in idx]
        sub = _subset(ds, idx)
        k = ZONES.index(zone)
        true = evaluate(seg, sub, mode, device=device, cleanup=cleanup, zone_rows=rows)
        swapped = evaluate(seg, sub, mode, device=device, cleanup=cleanup, zone_rows=rows,
                           texts=[flip_text_vertical(t) for t in texts])
        a, b = np.array(true.zone_shares), np.array(swapped.zone_shares)
        out.append(ZoneRow(zone, len(idx), true.mean_dice, swapped.mean_dice, 100 * a[:, k].mean(),
                           100 * b[:, k].mean(), 100 * _hits(a, k), 100 * _hits(b, k),
                           [100 * float(x) for x in a.mean(axis=0)]))
    return rows, out


def _hits(shares: np.ndarray, k: int) -> float:
    others = np.delete(shares, k, axis=1)
    return float(np.mean(shares[:, k] > others.max(axis=1)))


def _subset(ds: ImageTextDataset, idx: list[int]) -> ImageTextDataset:
    import copy

    sub = copy.copy(ds)
    sub.keep(idx)  # keep() rebinds its lists: ``ds`` is unchanged
    return sub


def zone_table(rows: tuple[float, float], figure: list[ZoneRow]) -> str:
    """The zone figure as a Markdown table."""
    lines = [f"lung field: rows {100 * rows[0]:.0f}-{100 * rows[1]:.0f} % of the image height, in thirds",
             "| sentence names only | n | Dice true / zones swapped | mask share in that third, true / swapped "
             "| images with most mass there, true / swapped | share upper / middle / lower (true) |",
             "|---|---|---|---|---|---|"]
    for r in figure:
        lines.append(f"| {r.zone} zones | {r.n} | {r.dice:.2f} / {r.dice_swapped:.2f} | {r.share:.1f} % / "
                     f"{r.share_swapped:.1f} % | {r.hit:.1f} % / {r.hit_swapped:.1f} % | "
                     + " / ".join(f"{s:.1f}" for s in r.shares) + " % |")
    return "\n".join(lines)


@dataclass
class MosaicFigure:
    """Dice (%) of the same tiles segmented one by one and as one mosaic (each tile scored on its own part)."""

    one_by_one: list[float]
    mosaic: list[float]
    windows: int  # windows the mosaic was segmented by (0: in one input)

    @property
    def gap(self) -> float:
        """Mean one-by-one Dice minus mean mosaic Dice, in points."""
        return float(np.mean(self.one_by_one) - np.mean(self.mosaic))


def mosaic_figure(segmenter, tiles: list[tuple[np.ndarray, np.ndarray, str]], columns: int = 2) -> MosaicFigure:
    """Segment equal-sized tiles (image, truth mask, sentence) one by one, each with its own sentence, then as one
    mosaic of ``columns`` tiles a row prompted with the first tile's sentence; Dice of each tile, both ways. The
    full-resolution masks are scored (not the model's 224 x 224)."""
    h, w = tiles[0][0].shape[:2]
    if len(tiles) % columns or any(t[0].shape != tiles[0][0].shape or t[1].shape != (h, w) for t in tiles):
        raise ValueError(f"a mosaic needs a multiple of {columns} tiles of one shape with masks of their size")
    alone = [100 * dice_iou(segmenter.predict(img, text).mask, truth)[0] for img, truth, text in tiles]
    rows = [np.concatenate([t[0] for t in tiles[i:i + columns]], axis=1) for i in range(0, len(tiles), columns)]
    pred = segmenter.predict(np.concatenate(rows, axis=0), tiles[0][2])
    parts = [pred.mask[(k // columns) * h:(k // columns + 1) * h, (k % columns) * w:(k % columns + 1) * w]
             for k in range(len(tiles))]
    together = [100 * dice_iou(part, t[1])[0] for part, t in zip(parts, tiles)]
    return MosaicFigure(alone, together, pred.windows)
