"""Does re-estimating the U-Net's BatchNorm statistics on a project's own images (no labels, no gradient) move
its Dice?  A probe for issue 25's "new source" scenario: a model that never saw a hospital's films, its BatchNorm
statistics re-estimated over that hospital's images, scored before and after on folders with expert masks.

    python benchmarks/bn_adapt.py --model runs/qata-covid/seg --adapt runs/qata-covid/data/pile --limit 200 \
        --score runs/qata-covid/data/pile ../shared/data/qata_cov19/valid --score-limit 200

``--blend B`` keeps (1 - B) of the old statistics (B = 1: the project's alone). Prints one row per scored folder:
the mean Dice before and after, their paired difference and the paired t-test's p; the text-mask decoder and the
frozen vision-language model are left as they are (only the U-Net's statistics move).
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from napari_amvlm.data.dataset import ImageTextDataset
from napari_amvlm.data.split import spread_sample
from napari_amvlm.evaluation import evaluate
from napari_amvlm.metrics import paired_t_test
from napari_amvlm.model.batchnorm import image_batches, reestimate_batchnorm
from napari_amvlm.model.hub import load_segmenter


def _sample(ds: ImageTextDataset, limit: int | None, seed: int) -> ImageTextDataset:
    ds.keep(spread_sample(range(len(ds)), limit, seed))
    return ds


def adapted(seg, ds: ImageTextDataset, blend: float):
    """A copy of ``seg`` whose U-Net statistics are re-estimated over ``ds``'s images (and their mirrors with flip
    averaging), as ``amvlm train --adapt-bn`` does before training."""
    out = copy.deepcopy(seg).eval()
    reestimate_batchnorm(out.unet, image_batches(ds, seg.cfg.flip_average), blend)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapt", required=True, help="folder of the project's images (masks not used)")
    ap.add_argument("--limit", type=int, default=None, help="a seeded sample of this many adapt images")
    ap.add_argument("--score", nargs="+", required=True, help="folders with masks to score on")
    ap.add_argument("--score-limit", type=int, default=None)
    ap.add_argument("--blend", type=float, nargs="+", default=[1.0])
    ap.add_argument("--mode", choices=("fused", "segmenter"), default="fused",
                    help="score the text-fused masks or the U-Net's alone (a model trained without text)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    seg = load_segmenter(a.model)
    size = seg.amvlm.cfg.vision.image_size
    adapt = _sample(ImageTextDataset(a.adapt, size=size), a.limit, a.seed)
    scored = [(s, _sample(ImageTextDataset(s, size=size, require_masks=True), a.score_limit, a.seed + 1))
              for s in a.score]
    base = {s: np.array(evaluate(seg, ds, mode=a.mode).dice) for s, ds in scored}
    print(f"BatchNorm re-estimated on {len(adapt)} images of {a.adapt}")
    print("| blend | scored on | n | before | after | after - before | p |")
    print("|---|---|---|---|---|---|---|")
    for blend in a.blend:
        model = adapted(seg, adapt, blend)
        for s, ds in scored:
            after = np.array(evaluate(model, ds, mode=a.mode).dice)
            d = after - base[s]
            p = paired_t_test(after, base[s])[1] if len(ds) > 1 else float("nan")
            print(f"| {blend:g} | {s} | {len(ds)} | {100 * base[s].mean():.2f} | {100 * after.mean():.2f} | "
                  f"{100 * d.mean():+.2f} | {p:.2g} |", flush=True)


if __name__ == "__main__":
    main()
