"""Paired comparison of two models' per-image Dice (the CSVs of ``amvlm evaluate --per-image``).

    python scripts/compare_runs.py runs/qata/seg-fused.csv runs/qata/sup.csv
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from napari_amvlm.metrics import paired_t_test


def read(path: str) -> dict[str, float]:
    with open(path, newline="") as f:
        return {r["image"]: float(r["dice"]) for r in csv.DictReader(f)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="per-image CSV of the model under test")
    ap.add_argument("b", help="per-image CSV of the reference (e.g. the supervised-only baseline)")
    args = ap.parse_args()
    a, b = read(args.a), read(args.b)
    if a.keys() != b.keys():
        raise SystemExit(f"the two files do not hold the same images ({len(a)} and {len(b)})")
    names = sorted(a)
    x, y = np.array([a[n] for n in names]), np.array([b[n] for n in names])
    _, p = paired_t_test(x, y)
    print(f"{args.a}: {100 * x.mean():.2f} Dice | {args.b}: {100 * y.mean():.2f} Dice | "
          f"difference {100 * (x - y).mean():+.2f} | paired t-test p = {p:.3g} over {len(names)} images")


if __name__ == "__main__":
    main()
