"""Large images at the model's own scale: Dice of MoNuSeg tiles segmented one by one against the same tiles as one
2 x 2 mosaic (issue 28's goal: within 2 points), with the model's field (tiled) and with the whole mosaic squeezed
into one input (field 0, the behaviour before tiling).

    python scripts/mosaic_dice.py                       # models/amvlm-monuseg on ../shared/data/monuseg/Val_Folder
    python scripts/mosaic_dice.py --model DIR --data DIR --first 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_amvlm.data.dataset import read_records
from napari_amvlm.evaluation import mosaic_figure
from napari_amvlm.inference import Segmenter
from napari_amvlm.io import read_image, read_mask

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "amvlm-monuseg"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "monuseg" / "Val_Folder"))
    ap.add_argument("--first", type=int, nargs="+", default=[0, 2],
                    help="each mosaic is 4 tiles from this index of the folder's sorted tiles (default: 0 and 2)")
    args = ap.parse_args()
    records = sorted(read_records(args.data), key=lambda r: r.name)
    seg = Segmenter.from_folder(args.model)
    field = seg.field
    print(f"model {args.model} (field {field} px: {seg.seg.cfg.field_note or '-'}), data {args.data}\n")
    print("| tiles | one by one | mosaic, tiled | windows | mosaic, whole (field 0) |")
    print("|---|---|---|---|---|")
    rows = []
    for first in args.first:
        chosen = records[first:first + 4]
        if len(chosen) < 4:
            raise SystemExit(f"the folder has {len(records)} tiles: no 4 tiles from index {first}")
        tiles = [(read_image(r.image), read_mask(r.mask), r.text) for r in chosen]
        seg.field = field
        tiled = mosaic_figure(seg, tiles)
        seg.field = 0
        whole = mosaic_figure(seg, tiles)
        rows.append((tiled, whole))
        print(f"| {first}-{first + 3} | {np.mean(tiled.one_by_one):.2f} | {np.mean(tiled.mosaic):.2f} | "
              f"{tiled.windows} | {np.mean(whole.mosaic):.2f} |")
    gaps = [t.gap for t, _ in rows]
    print(f"\nmean gap (one by one - tiled mosaic): {np.mean(gaps):.2f} Dice points; largest {max(gaps):.2f}")


if __name__ == "__main__":
    main()
