"""Choose the fusion weight lambda of a trained segmenter (mask = lambda T + (1 - lambda) P > 0.5) on held-out masks.

The held-out images are the *unlabeled* part of the training split the segmenter was trained with (same
fraction and seed): training never read their masks, so choosing lambda on them leaves the validation split
untouched. Prints mean per-image Dice (at 0.5, model size) for each lambda, and for images whose sentence names
one side only, with the true and the left/right-swapped sentence. ``--write`` stores the best lambda in the
model folder's segmenter.json (atomically). ``--min-areas`` adds a second table: Dice after the clean-up of
napari_amvlm/inference/postprocess.py at the model's stored lambda, for each smallest region kept (the data behind its
``min_area`` default).

    python scripts/fusion_lambda.py --model runs/seg-qata2 --data ../shared/data/qata_cov19/train \\
        --labeled-fraction 0.25 --limit 600
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from napari_amvlm._atomic import atomic_write_text
from napari_amvlm.data.dataset import ImageTextDataset
from napari_amvlm.data.split import labeled_split, spread_sample, unseen_subjects
from napari_amvlm.data.text import flip_text_horizontal, sides
from napari_amvlm.inference import batch_probabilities
from napari_amvlm.inference.fusion import fuse
from napari_amvlm.inference.postprocess import Cleanup, clean_mask
from napari_amvlm.metrics import dice_iou
from napari_amvlm.model.hub import SEG_CONFIG_NAME, load_segmenter


@torch.inference_mode()
def probabilities(seg, ds, texts, swapped, batch: int = 16):
    """Teacher P, text mask T and T for the swapped sentences (each (N, S, S) numpy), computed as evaluation and
    the widget compute them (``batch_probabilities``: the model's mirror averaging included)."""
    out = {"p": [], "t": [], "t_swapped": []}
    for start in range(0, len(ds), batch):
        items = [ds[i] for i in range(start, min(start + batch, len(ds)))]
        images = torch.stack([it["image"] for it in items])
        out["p"].append(batch_probabilities(seg, images, None, "segmenter")[:, 0].numpy())
        for key, sents in (("t", texts), ("t_swapped", swapped)):
            sent = [sents[it["index"]] for it in items]
            out[key].append(batch_probabilities(seg, images, sent, "textmask")[:, 0].numpy())
    return tuple(np.concatenate(v) for v in out.values())


def _logit_fuse(p, t, lam, eps=1e-4):
    """sigmoid(lam logit T + (1 - lam) logit P): the weighted logit average, for comparison."""
    lp, lt = torch.logit(p, eps), torch.logit(t, eps)
    return torch.sigmoid(lam * lt + (1 - lam) * lp)


def mean_dice(p, t, masks, lam, keep=None, rule="linear"):
    idx = range(len(masks)) if keep is None else keep
    rule_fn = fuse if rule == "linear" else _logit_fuse
    prob = rule_fn(torch.from_numpy(p), torch.from_numpy(t), lam).numpy()
    return 100 * float(np.mean([dice_iou(prob[i] > 0.5, masks[i])[0] for i in idx]))


def cleanup_table(p, t, masks, images, lam, min_areas):
    """[(min_area, mean Dice)] of the fused masks at ``lam`` after the clean-up with each ``min_area`` (None: no
    clean-up at all)."""
    fused = (fuse(torch.from_numpy(p), torch.from_numpy(t), lam).numpy() > 0.5)
    rows = []
    for area in [None, *min_areas]:
        preds = fused if area is None else [clean_mask(m, img, Cleanup(min_area=area)) for m, img in zip(fused, images)]
        rows.append((area, 100 * float(np.mean([dice_iou(pr, mk)[0] for pr, mk in zip(preds, masks)]))))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", required=True, nargs="+", help="the training folder(s) the segmenter was trained on")
    ap.add_argument("--labeled-fraction", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="use N held-out images drawn at random (with --seed) from all of them")
    ap.add_argument("--new-patients", action="store_true",
                    help="only held-out images of patients with no labeled image (BIDS 'sub-<label>' in the file "
                         "name), as in a validation split of new patients")
    ap.add_argument("--lambdas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                    help="weights of the text mask to try (0: the U-Net alone, 1: the text mask alone)")
    ap.add_argument("--write", action="store_true", help="store the best lambda in the model's segmenter.json")
    ap.add_argument("--choose", type=float, help="with --write: store this lambda instead of the best one (a choice "
                                                  "made on the printed table, e.g. for the true-vs-swapped gap)")
    ap.add_argument("--rule", choices=("linear", "logit"), default="linear",
                    help="fusion rule to score: the shipped linear one, or a weighted logit average (comparison only)")
    ap.add_argument("--min-areas", help="comma-separated smallest regions (fractions of the image) to score the "
                                         "clean-up with, at the model's stored lambda, e.g. 0,0.002,0.005,0.01")
    args = ap.parse_args(argv)
    seg = load_segmenter(args.model)
    ds = ImageTextDataset(args.data, size=seg.amvlm.cfg.vision.image_size)
    names = [r.name for r in ds.records]
    labeled, unlabeled = labeled_split(names, args.labeled_fraction, None, args.seed)
    if args.new_patients:
        unlabeled = unseen_subjects(names, labeled, unlabeled)
        if not unlabeled:
            raise SystemExit("--new-patients: no held-out image names a patient (BIDS 'sub-<label>') without "
                             "labeled images")
    held = spread_sample([i for i in unlabeled if ds.records[i].mask is not None], args.limit, args.seed)
    ds.keep(held)
    masks = np.stack([ds[i]["mask"][0].numpy() > 0.5 for i in range(len(ds))])
    texts = list(ds.texts)
    one_side = [i for i, s in enumerate(texts) if sides(s) in ({"left"}, {"right"})]
    p, t, t_swapped = probabilities(seg, ds, texts, [flip_text_horizontal(s) for s in texts])
    lambdas = [float(x) for x in args.lambdas.split(",")]
    whose = " of patients with no labeled image" if args.new_patients else ""
    print(f"{len(ds)} held-out images{whose} ({len(one_side)} name one side) of {args.data}, model {args.model}")
    print("lambda | Dice all | one side: true | swapped")
    rows = []
    for lam in lambdas:
        rows.append((lam, mean_dice(p, t, masks, lam, rule=args.rule), mean_dice(p, t, masks, lam, one_side, args.rule),
                     mean_dice(p, t_swapped, masks, lam, one_side, args.rule)))
        print(f"{lam:.2f} | {rows[-1][1]:.2f} | {rows[-1][2]:.2f} | {rows[-1][3]:.2f}")
    best = max(rows, key=lambda r: r[1])[0]
    print(f"best lambda by Dice on all held-out images: {best:.2f}")
    if args.min_areas:
        lam = seg.cfg.fusion_lambda
        images = [ds[i]["image"].numpy().transpose(1, 2, 0) for i in range(len(ds))]
        print(f"clean-up at the stored lambda {lam:.2f}: smallest region kept (fraction of the image) | Dice all")
        for area, dice in cleanup_table(p, t, masks, images, lam, [float(x) for x in args.min_areas.split(",")]):
            print(f"{'no clean-up' if area is None else f'{area:g}'} | {dice:.2f}")
    if args.write and args.rule != "linear":
        raise SystemExit("--write stores a linear fusion weight: run it with --rule linear")
    if args.write:
        best = best if args.choose is None else args.choose
        path = args.model / SEG_CONFIG_NAME
        doc = json.loads(path.read_text())
        doc["segmenter"]["fusion_lambda"] = best
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        print(f"wrote fusion_lambda={best:.2f} to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
