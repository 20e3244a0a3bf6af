"""Ablation on QaTa at 25 % labels: writes docs/RESULTS.md (Dice, mIoU, std, paired t-test, wall time, command).

Rows: supervised-only U-Net; Mean Teacher without text; with text (over ``--pretrained``, the AMVLM pre-trained
with every loss); and the stage-1 comparison, where all losses, no CSS and no ICL are each pre-trained again with
the same budget (so that the three differ only in the loss), then stage 2 with text. Every row is a real run of
the `amvlm` command printed next to it; per-image Dice of each row is compared with "Mean Teacher, no text" by a
paired t-test over the validation images.

    python scripts/ablation.py --train ../shared/data/qata_cov19/train --val ../shared/data/qata_cov19/valid \
        --pretrained models/amvlm-qata --epochs 8 --pretrain-epochs 4 --work runs/ablation

On 2 CPU cores a full run takes many hours; --epochs, --pretrain-epochs / --pretrain-steps and --val-limit scale
it down (the table says which budget it ran with).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from napari_amvlm.metrics import paired_t_test

AMVLM = [sys.executable, "-m", "napari_amvlm.cli"]


def run(cmd: list[str]) -> float:
    print("$", shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


STAGE2_ROWS = (("supervised-only U-Net", ["--supervised-only"]), ("Mean Teacher, no text", ["--no-text"]),
               ("Mean Teacher + text (AMVLM, all losses)", []))
STAGE1_VARIANTS = (("all losses", {}), ("no CSS", {"w_css": 0.0}), ("no ICL", {"w_icl": 0.0}))


def variant_row(variant: str) -> str:
    return f"Mean Teacher + text (short pre-training, {variant})"


ROWS = [name for name, _ in STAGE2_ROWS] + [variant_row(v) for v, _ in STAGE1_VARIANTS]


def pretrain_variant(args, name: str, weights: dict) -> tuple[Path, float, str]:
    out = Path(args.work) / f"pretrain-{name}"
    cfg = Path(args.work) / f"{name}.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"loss": weights}))
    cmd = AMVLM + ["pretrain", "--data", args.train, "--out", str(out), "--epochs", str(args.pretrain_epochs),
                   "--model-config", str(cfg), "--device", args.device, "--resume"]
    if args.pretrain_steps:
        cmd += ["--max-steps", str(args.pretrain_steps)]
    return out, run(cmd), shlex.join(cmd[3:])


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def stage2(args, name: str, model: Path, extra: list[str]) -> dict:
    out = Path(args.work) / slug(name)
    cmd = AMVLM + ["train", "--data", args.train, "--val", args.val, "--model", str(model), "--labeled-fraction",
                   "0.25", "--out", str(out), "--epochs", str(args.epochs), "--rampup-epochs", str(args.rampup_epochs),
                   "--device", args.device, "--resume", *extra]
    if args.val_limit:
        cmd += ["--val-limit", str(args.val_limit)]
    wall = run(cmd)
    per = Path(args.work) / f"{slug(name)}.per_image.csv"
    mode = "segmenter" if ("--no-text" in extra or "--supervised-only" in extra) else "fused"
    run(AMVLM + ["evaluate", "--model", str(out), "--data", args.val, "--mode", mode, "--per-image", str(per)])
    with open(per, newline="") as f:
        rows = list(csv.DictReader(f))
    return {"name": name, "dice": np.array([float(r["dice"]) for r in rows]),
            "iou": np.array([float(r["iou"]) for r in rows]), "wall_s": wall, "command": "amvlm " + shlex.join(cmd[3:])}


def save_row(args, row: dict) -> dict:
    """Keep a finished row (per-image figures, wall time, command), so that a rerun does not measure it again."""
    out = {**row, "dice": row["dice"].tolist(), "iou": row["iou"].tolist()}
    (Path(args.work) / f"{slug(row['name'])}.row.json").write_text(json.dumps(out))
    return row


def finished_row(args, name: str) -> dict | None:
    path = Path(args.work) / f"{slug(name)}.row.json"
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    print(f"{name}: finished earlier ({path})", flush=True)
    return {**row, "dice": np.array(row["dice"]), "iou": np.array(row["iou"])}


def table(rows: list[dict], ref: dict, args) -> str:
    lines = ["| setting | Dice (%) | mIoU (%) | p vs MT no text | wall time | command |", "|---|---|---|---|---|---|"]
    for r in rows:
        p = "—" if r is ref else f"{paired_t_test(r['dice'], ref['dice'])[1]:.3g}"
        lines.append(f"| {r['name']} | {100 * r['dice'].mean():.2f} ± {100 * r['dice'].std():.2f} | "
                     f"{100 * r['iou'].mean():.2f} ± {100 * r['iou'].std():.2f} | {p} | {r['wall_s'] / 60:.0f} min | "
                     f"`{r['command']}` |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--pretrained", required=True, help="AMVLM pre-trained with every loss")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--rampup-epochs", type=float, help="ramp-up of the unlabeled weight (default: half of --epochs)")
    ap.add_argument("--pretrain-epochs", type=int, default=4)
    ap.add_argument("--pretrain-steps", type=int, help="stop each stage-1 variant after this many steps")
    ap.add_argument("--val-limit", type=int, help="validate on the first N images while training (the table's "
                    "figures always use every validation image)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", default="runs/ablation")
    ap.add_argument("--out", default="docs/RESULTS.md")
    args = ap.parse_args()
    if args.rampup_epochs is None:
        args.rampup_epochs = args.epochs / 2
    full = Path(args.pretrained)
    rows: list[dict] = []
    for name, extra in STAGE2_ROWS:
        rows.append(finished_row(args, name) or save_row(args, stage2(args, name, full, extra)))
        write(rows, args)
    for variant, weights in STAGE1_VARIANTS:
        name = variant_row(variant)
        row = finished_row(args, name)
        if row is None:
            model, wall, cmd = pretrain_variant(args, slug(variant), weights)
            row = stage2(args, name, model, [])
            row["wall_s"] += wall
            row["command"] = f"amvlm {cmd} && {row['command']}"
            save_row(args, row)
        rows.append(row)
        write(rows, args)
    print(Path(args.out).read_text())


KEEP_MARK = "<!-- written by scripts/ablation.py above this line; text below it is kept when it rewrites the file -->"


def write(rows: list[dict], args) -> None:
    """Write the table so far (a long run that stops early still leaves its finished rows)."""
    text = (f"# Ablation on QaTa-COV19 valid ({len(rows[0]['dice'])} images), 25 % labeled\n\n"
            + ("" if len(rows) == len(ROWS) else
               f"**Partial: {len(rows)} of the {len(ROWS)} rows are done; the run had not finished the others: "
               f"{'; '.join(n for n in ROWS if n not in {r['name'] for r in rows})}.**\n\n")
            + f"Stage 2: {args.epochs} epoch(s) from scratch for every row (unlabeled weight ramped up over "
            f"{args.rampup_epochs:g} epoch(s)); the last three rows pre-train AMVLM again for "
            f"{args.pretrain_epochs} epoch(s)"
            + (f", at most {args.pretrain_steps} steps" if args.pretrain_steps else "") + ". "
            "Dice/mIoU: per-image at 0.5, 224x224, mean ± std over images. p: paired t-test of per-image Dice "
            f"against Mean Teacher without text.\n\nReproduce: `python {' '.join(sys.argv)}`\n\n"
            + table(rows, rows[1] if len(rows) > 1 else rows[0], args) + "\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.read_text() if out.exists() else ""
    kept = old.split(KEEP_MARK, 1)[1] if KEEP_MARK in old else "\n"  # hand-written notes below the mark stay
    out.write_text(text + "\n" + KEEP_MARK + kept)


if __name__ == "__main__":
    main()
