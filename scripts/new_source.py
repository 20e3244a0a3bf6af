"""The "new source" scenario of the annotation loop (benchmarks/annotation_loop.py): QaTa's training split cut by
source into image,mask,text folders that point at the shared data (nothing is copied).

- ``OUT/covid``: the ``covid_*`` images of ``train`` + ``train_rest`` (what the starting model is trained on,
  25 % of them labeled, exactly as the bundled model is trained on the whole split);
- ``OUT/pile``: the ``sub-*`` images of ``train`` + ``train_rest`` (another hospital's films: the starting model never
  sees one; the loop's pile is drawn from them).

    python scripts/new_source.py --data ../shared/data/qata_cov19/train ../shared/data/qata_cov19/train_rest \
        --out runs/qata-covid/data
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_amvlm.data.dataset import read_records  # noqa: E402

SOURCES = {"covid": "covid_", "pile": "sub-"}


def write_folder(records, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = [(os.path.relpath(r.image, out), os.path.relpath(r.mask, out) if r.mask else "", r.text) for r in records]
    with open(out / "text.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "mask", "text"])
        w.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="QaTa training folders (train, train_rest)")
    ap.add_argument("--out", required=True, help="folder to write the two sub-folders to")
    args = ap.parse_args(argv)
    records = [r for folder in args.data for r in read_records(folder, require_masks=True)]
    for name, prefix in SOURCES.items():
        n = write_folder([r for r in records if r.name.startswith(prefix)], Path(args.out) / name)
        print(f"{Path(args.out) / name}: {n} images ({prefix}*)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
