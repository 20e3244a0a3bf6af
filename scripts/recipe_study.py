"""Stage-2 recipe study on QaTa at 25 % labels: every row trains for the same compute budget, from scratch.

The budget is CPU time of one thread (``--cpu-min``): each row trains single-threaded and stops when its process
has used that much CPU time, whatever else runs on the machine, so rows can run side by side (one per core) and
still get the same budget. Two threads on two idle cores train the probe's U-Net 2.0x as fast as one (5.08 vs
2.54 img/s, measured with ``benchmarks/train_throughput.py``-style fwd+bwd steps), so 50 CPU minutes are the
work of about 25 minutes of wall time on 2 idle cores.

Each row is a real run of the engine's training loop (``train_mean_teacher``) with the settings listed in ROWS;
the model kept is the last one (no selection on the validation split), evaluated on every validation image.
The table (Dice, mIoU, paired t-test of per-image Dice against the row named in "vs", steps, epochs, the
validation curve) is written between two marks in ``docs/RESULTS.md``; finished rows are kept in the work
folder and not measured again.

    python scripts/recipe_study.py --data ../shared/data/qata_cov19/train ../shared/data/qata_cov19/train_rest \
        --val ../shared/data/qata_cov19/valid --model models/amvlm-qata --cpu-min 50 --rows probe current
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_amvlm.config import MeanTeacherConfig, SegmenterConfig, UNetConfig
from napari_amvlm.metrics import paired_t_test

# The recipe as it was shipped: 4-level U-Net, class-balanced BCE, lr 3e-4 with warm restarts.
CURRENT = {"mt": {}, "unet": {"levels": 4}}
# The supervised probe of issue 12: 5 levels, base 16, Adam lr 1e-3 (constant), plain BCE, batch 8, no teacher,
# no augmentation (the training loop otherwise flips images and perturbs the student's view photometrically).
PROBE = {"mt": {"lr": 1e-3, "lr_floor": 1e-3, "lr_schedule": "cosine", "bce": "plain"}, "unet": {"levels": 5}}
NO_AUG = {"perturb_strength": 0.0, "hflip_p": 0.0}
SUP = {"unlabeled_batch": 0}
NEW_MT = {"lr_floor": 1e-5, "warmup_epochs": 2.0, "rampup_epochs": 2.0}


def _row(desc: str, vs: str | None, base: dict, mt: dict | None = None, unet: dict | None = None,
         seg: dict | None = None) -> dict:
    return {"desc": desc, "vs": vs, "mt": {**base["mt"], **(mt or {})}, "unet": {**base["unet"], **(unet or {})},
            "seg": seg or {}}


ROWS = {
    "probe": _row("supervised U-Net, issue-12 probe: 5 levels, lr 1e-3, plain BCE, no augmentation", None, PROBE,
                  {**SUP, **NO_AUG}, seg={"use_text": False}),
    "probe-aug": _row("probe + the loop's augmentation (flips, photometric view 0.3)", "probe", PROBE, SUP,
                      seg={"use_text": False}),
    "current": _row("current recipe: Mean Teacher + text, 4 levels, balanced BCE, lr 3e-4 restarts", "current-sup",
                    CURRENT),
    "current-sup": _row("current recipe, supervised only (balanced BCE)", "probe", CURRENT, SUP,
                        seg={"use_text": False}),
    "current-sup-plain": _row("current recipe, supervised only, plain BCE", "current-sup", CURRENT,
                              {**SUP, "bce": "plain"}, seg={"use_text": False}),
    "half-res": _row("probe at half resolution (U-Net works at 112x112), lr 1e-3 cosine to 1e-5", "probe", PROBE,
                     {**SUP, **NO_AUG, "lr_floor": 1e-5}, {"downsample": 2}, seg={"use_text": False}),
    "half-res-aug": _row("probe-aug at half resolution (U-Net works at 112x112), lr 1e-3 cosine to 1e-5", "probe-aug",
                         PROBE, {**SUP, "lr_floor": 1e-5},
                         {"downsample": 2}, seg={"use_text": False}),
    "half-res-mt": _row("half-res + Mean Teacher (no text), 2 supervised epochs first, 2-epoch ramp-up", "half-res",
                        PROBE, NEW_MT, {"downsample": 2}, seg={"use_text": False}),
    "half-res-mt-text": _row("half-res + Mean Teacher + text (the AMVLM of --model), as half-res-mt", "half-res",
                             PROBE, NEW_MT, {"downsample": 2}),
}


def configs(name: str, budget_s: float) -> tuple[MeanTeacherConfig, SegmenterConfig]:
    row = ROWS[name]
    mt = replace(MeanTeacherConfig(), keep="last", time_budget_s=budget_s, budget_clock="cpu", num_threads=1,
                 epochs=1000, **row["mt"])
    seg = SegmenterConfig(unet=UNetConfig(**row["unet"]))
    for k, v in row["seg"].items():
        setattr(seg, k, v)
    return mt, seg


def run_row(name: str, args) -> dict:
    from napari_amvlm.evaluation import evaluate
    from napari_amvlm.model.hub import load_segmenter
    from napari_amvlm.training.events import MetricsEvent, StepEvent, log_line
    from napari_amvlm.training.mean_teacher import train_mean_teacher

    mt, seg = configs(name, args.cpu_min * 60)
    out = Path(args.work) / name
    curve: list[tuple[int, float, float]] = []
    t_start, last = time.perf_counter(), None
    for ev in train_mean_teacher(args.data, args.val, args.model, out, mt, seg, labeled_fraction=0.25,
                                 device=args.device, resume=True):
        if isinstance(ev, StepEvent):
            last = ev
        if isinstance(ev, MetricsEvent):
            curve.append((ev.step, round(ev.metrics["train_s"]), round(ev.metrics["val_dice"], 2)))
        line = log_line(ev, 50)
        if line:
            print(f"[{name}] {line}", flush=True)
    model = load_segmenter(out, "cpu")
    res = evaluate(model, args.val, mode="fused" if seg.use_text else "segmenter")
    steps = last.step if last else 0
    n_lab = round(0.25 * sum(1 for _ in _records(args.data)))
    return {"name": name, "dice": res.dice, "iou": res.iou, "steps": steps,
            "epochs": steps * mt.labeled_batch / n_lab, "wall_s": time.perf_counter() - t_start, "curve": curve,
            "command": f"python scripts/recipe_study.py {_common_args(args)} --rows {name}"}


def _records(data):
    from napari_amvlm.data.dataset import read_records

    return [r for d in data for r in read_records(d)]


def _common_args(args) -> str:
    return (f"--data {' '.join(args.data)} --val {args.val} --model {args.model} --cpu-min {args.cpu_min:g}"
            f" --device {args.device}")


def _thin(curve: list, n: int) -> list:
    """At most n points of a curve, evenly spread, the last one included."""
    if len(curve) <= n:
        return curve
    idx = np.unique(np.round(np.linspace(0, len(curve) - 1, n)).astype(int))
    return [curve[i] for i in idx]


START, END = "<!-- recipe-study:start -->", "<!-- recipe-study:end -->"


def table(rows: dict[str, dict], cpu_min: float) -> str:
    lines = [f"## Recipe study: every row trained for {cpu_min:g} CPU minutes (about {cpu_min / 2:g} min on 2 idle "
             "cores)",
             "", "QaTa-COV19, 25 % of `train` + `train_rest` labeled (1,429 images; seed 0), the rest unlabeled; "
             "per-image Dice/mIoU at 0.5 on all 400 `valid` images, mean ± std; the last model of each run "
             "(no selection on `valid`). p: paired t-test of per-image Dice against the row in \"vs\". "
             "Curve: validation Dice at each epoch end (CPU minutes of training: Dice).", "",
             "| row | setting | Dice (%) | mIoU (%) | vs | p | steps (epochs) | curve | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        d, j = np.asarray(r["dice"]), np.asarray(r["iou"])
        ref = rows.get(ROWS[name]["vs"] or "")
        p = f"{paired_t_test(d, np.asarray(ref['dice']))[1]:.2g}" if ref else "—"
        curve = ", ".join(f"{t / 60:.0f}: {v:.1f}" for _, t, v in _thin(r["curve"], 6))
        lines.append(f"| {name} | {ROWS[name]['desc']} | {100 * d.mean():.2f} ± {100 * d.std():.2f} | "
                     f"{100 * j.mean():.2f} ± {100 * j.std():.2f} | {ROWS[name]['vs'] or '—'} | {p} | "
                     f"{r['steps']} ({r['epochs']:.1f}) | {curve} | `{r['command']}` |")
    return "\n".join(lines)


def write(rows: dict[str, dict], args) -> None:
    path = Path(args.results)
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{table(rows, args.cpu_min)}\n{END}"
    if START in text and END in text:
        text = text.split(START, 1)[0] + block + text.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="training folders (25 %% labeled, seed 0)")
    ap.add_argument("--val", required=True)
    ap.add_argument("--model", required=True, help="pre-trained AMVLM folder (text rows use it)")
    ap.add_argument("--cpu-min", type=float, default=50.0, help="training CPU time of every row, minutes")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default="runs/recipe")
    ap.add_argument("--results", default="docs/RESULTS.md")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.rows:
        path = work / f"{name}.row.json"
        if path.is_file():
            print(f"{name}: finished earlier ({path})", flush=True)
            continue
        row = run_row(name, args)
        path.write_text(json.dumps(row))
        print(f"{name}: dice {100 * np.mean(row['dice']):.2f}", flush=True)
        write(finished(work), args)  # every finished row, also those of a study running beside this one
    write(finished(work), args)


def finished(work: Path) -> dict[str, dict]:
    rows = {n: work / f"{n}.row.json" for n in ROWS}
    return {n: json.loads(p.read_text()) for n, p in rows.items() if p.is_file()}


if __name__ == "__main__":
    sys.exit(main())
