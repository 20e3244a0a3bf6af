"""Where a segmenter's Dice is lost, and what its masks know about sides (issue 12), on one image set.

Prints three tables for the images of ``--data`` (e.g. ``qata_cov19/valid``) or, with ``--labeled-fraction``, for
the held-out unlabeled images of the training folders (as ``fusion_lambda.py`` picks them):

1. Side from the masks: for images whose sentence names one side only, how often the named half of the image holds
   more of the mask, for the true mask (the ceiling), the U-Net teacher P > 0.5, the text mask T > 0.5 and the
   fused mask. Compare with the stage-1 side figure of ``amvlm retrieval``: an embedding cannot place the lesion
   better than the segmenter trained on the same images finds it.
2. Dice by true lesion area (thirds of the images), and the images under 50 Dice: how many over-segment (predicted
   area > 1.5x the true one) or under-segment (< 2/3 of it); for the smallest third, whether false-positive pixels
   lie near the true mask (a wide edge) or far from it (another region).
3. Mean Dice for each fusion weight and threshold (no clean-up), to see whether either is mis-set.
4. With ``--partner DIR ...``: the fused Dice when the model's text mask T is fused with another model folder's
   U-Net instead of its own teacher (run through this model's mirror averaging), e.g. the supervised-only floor
   or a Mean Teacher trained without text. A partner whose errors are less like T's gains more from the fusion.

Probabilities are computed as evaluation computes them (``batch_probabilities``, mirror averaging included).

    python scripts/error_analysis.py --model models/amvlm-qata --data ../shared/data/qata_cov19/valid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_amvlm.data.dataset import ImageTextDataset
from napari_amvlm.data.split import labeled_split, spread_sample, unseen_subjects
from napari_amvlm.data.text import sides
from napari_amvlm.inference import batch_probabilities
from napari_amvlm.inference.fusion import fuse
from napari_amvlm.metrics import dice_iou
from napari_amvlm.model.hub import load_segmenter


@torch.inference_mode()
def teacher_and_text(seg, ds: ImageTextDataset, batch: int = 16, text: bool = True
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """P and T (None without ``text``), each (N, S, S) float32, for the images of ``ds`` and their own sentences."""
    p, t = [], []
    for start in range(0, len(ds), batch):
        items = [ds[i] for i in range(start, min(start + batch, len(ds)))]
        images = torch.stack([it["image"] for it in items])
        p.append(batch_probabilities(seg, images, None, "segmenter")[:, 0].numpy())
        if text:
            t.append(batch_probabilities(seg, images, [it["text"] for it in items], "textmask")[:, 0].numpy())
    return np.concatenate(p), (np.concatenate(t) if text else None)


def partner_table(seg, ds: ImageTextDataset, masks: np.ndarray, p: np.ndarray, t: np.ndarray,
                  partners: list[Path], lambdas=(0.0, 0.5, 0.6, 0.7)) -> list[str]:
    """Markdown rows: fused Dice of T with the model's own U-Net and with each partner folder's U-Net."""
    lines = ["| U-Net fused with the text mask | " + " | ".join(f"lambda {w:g}" for w in lambdas) + " |",
             "|---" * (len(lambdas) + 1) + "|"]
    own = seg.unet
    try:
        for name, probs in [("own teacher", p), *((str(d), None) for d in partners)]:
            if probs is None:
                seg.unet = load_segmenter(name).unet.eval()
                probs = teacher_and_text(seg, ds, text=False)[0]
            row = [dice_all(fuse(torch.from_numpy(probs), torch.from_numpy(t), w).numpy() > 0.5, masks).mean()
                   for w in lambdas]
            lines.append(f"| {name} | " + " | ".join(f"{d:.2f}" for d in row) + " |")
    finally:
        seg.unet = own
    return lines


def named_half_wins(masks: np.ndarray, named_left: np.ndarray) -> float:
    """% of (N, H, W) masks with more foreground in the named half (the image's left half where ``named_left``)."""
    w = masks.shape[-1]
    left = masks[..., : w // 2].sum((1, 2))
    right = masks[..., w - w // 2:].sum((1, 2))
    return 100.0 * float(np.mean(np.where(named_left, left > right, right > left)))


NEAR_PX = 8


def false_positive_distance(pred: np.ndarray, masks: np.ndarray) -> tuple[int, int]:
    """(false-positive pixels within NEAR_PX of the true mask, those farther) over (N, H, W) boolean masks."""
    near = far = 0
    for pr, mk in zip(pred, masks):
        ring = ndi.binary_dilation(mk, iterations=NEAR_PX)
        fp = pr & ~mk
        near += int((fp & ring).sum())
        far += int((fp & ~ring).sum())
    return near, far


def dice_all(pred: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.array([dice_iou(a, b)[0] for a, b in zip(pred, masks)]) * 100.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", required=True, nargs="+", help="image folder(s)")
    ap.add_argument("--labeled-fraction", type=float,
                    help="use the held-out unlabeled images of these training folders (same split as training)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-patients", action="store_true",
                    help="with --labeled-fraction: only patients with no labeled image (BIDS 'sub-<label>' names)")
    ap.add_argument("--only", metavar="PREFIX", help="only images whose name starts with PREFIX (QaTa: 'sub' or "
                                                     "'covid', its two sources)")
    ap.add_argument("--limit", type=int, help="use N of the images, drawn at random with --seed")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--partner", type=Path, nargs="+", default=[], metavar="DIR",
                    help="model folders whose U-Net to fuse with this model's text mask (table 4)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seg = load_segmenter(args.model).eval()
    ds = ImageTextDataset(args.data, size=seg.amvlm.cfg.vision.image_size)
    keep = [i for i, r in enumerate(ds.records) if r.mask is not None]
    if args.labeled_fraction is not None:
        names = [r.name for r in ds.records]
        labeled, unlabeled = labeled_split(names, args.labeled_fraction, None, args.seed)
        if args.new_patients:
            unlabeled = unseen_subjects(names, labeled, unlabeled)
        keep = [i for i in unlabeled if ds.records[i].mask is not None]
    if args.only:
        keep = [i for i in keep if ds.records[i].name.startswith(args.only)]
    ds.keep(spread_sample(keep, args.limit, args.seed))
    masks = np.stack([ds[i]["mask"][0].numpy() > 0.5 for i in range(len(ds))])
    texts = list(ds.texts)
    p, t = teacher_and_text(seg, ds)
    lam = seg.cfg.fusion_lambda
    fused = fuse(torch.from_numpy(p), torch.from_numpy(t), lam).numpy()
    print(f"{len(ds)} images of {' '.join(args.data)}, model {args.model} (lambda {lam:.2f}, mirror averaging "
          f"{'on' if seg.cfg.flip_average else 'off'})\n")

    one = np.array([i for i, s in enumerate(texts) if sides(s) in ({"left"}, {"right"})], dtype=int)
    named_left = np.array([sides(texts[i]) == {"left"} for i in one], dtype=bool)
    print(f"1. Side from the masks ({len(one)} one-sided images): % with more mask in the named half")
    print("mask | %")
    print("|---|---|")
    for name, m in (("true mask (ceiling)", masks), ("U-Net teacher P > 0.5", p > 0.5), ("text mask T > 0.5", t > 0.5),
                    (f"fused > 0.5 (lambda {lam:.2f})", fused > 0.5)):
        print(f"| {name} | {named_half_wins(m[one], named_left):.1f} |")

    dice = dice_all(fused > 0.5, masks)
    area_true, area_pred = masks.mean((1, 2)) * 100, (fused > 0.5).mean((1, 2)) * 100
    cuts = np.quantile(area_true, [1 / 3, 2 / 3])
    print(f"\n2. Fused Dice by true lesion area (mean {dice.mean():.2f}; true area {area_true.mean():.2f} %, "
          f"predicted {area_pred.mean():.2f} % of the image)")
    print("| true area (% of image) | images | Dice | predicted / true area |")
    print("|---|---|---|---|")
    for lo, hi in zip([0.0, *cuts], [*cuts, np.inf]):
        sel = (area_true >= lo) & (area_true < hi)
        ratio = area_pred[sel].sum() / max(area_true[sel].sum(), 1e-9)
        print(f"| {lo:.2f}-{hi:.2f} | {sel.sum()} | {dice[sel].mean():.2f} | {ratio:.2f} |")
    bad = dice < 50
    over = int((area_pred[bad] > 1.5 * area_true[bad]).sum())
    under = int((area_pred[bad] < area_true[bad] / 1.5).sum())
    print(f"under 50 Dice: {bad.sum()} images ({100 * bad.mean():.1f} %); {over} over-segment, {under} "
          f"under-segment; their true area {area_true[bad].mean():.2f} %, predicted {area_pred[bad].mean():.2f} %")
    small = area_true < cuts[0]
    near, far = false_positive_distance(fused[small] > 0.5, masks[small])
    print(f"smallest third: {near + far} false-positive pixels, {100 * near / max(near + far, 1):.0f} % of them within "
          f"{NEAR_PX} px of the true mask (a drawn-too-wide edge), {100 * far / max(near + far, 1):.0f} % farther "
          "(a region that is not the lesion)")

    thresholds = (0.4, 0.45, 0.5, 0.55, 0.6)
    print("\n3. Mean Dice (no clean-up) for each fusion weight (rows) and threshold (columns)")
    print("| lambda | " + " | ".join(f"{th:g}" for th in thresholds) + " |")
    print("|---" * (len(thresholds) + 1) + "|")
    for w in (0.0, 0.3, 0.5, 0.7, 0.85, 1.0):
        f = fuse(torch.from_numpy(p), torch.from_numpy(t), w).numpy()
        print(f"| {w:g} | " + " | ".join(f"{dice_all(f > th, masks).mean():.2f}" for th in thresholds) + " |")
    if args.partner:
        print("\n4. Mean Dice (no clean-up) of this model's text mask fused with other U-Nets")
        print("\n".join(partner_table(seg, ds, masks, p, t, args.partner)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
