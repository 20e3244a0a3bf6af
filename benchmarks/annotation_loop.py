"""The annotation loop, simulated: does pressing Retrain make the next masks better?

A simulated annotator works through a pile of real images, each prompted with its own sentence, in a real
annotation project, with the code the widget runs: :class:`napari_amvlm.inference.Segmenter` for the masks (with
the model's clean-up), the project store for predictions and human labels, and
:class:`napari_amvlm.training.rounds.RetrainJob` (export, training process, guard, install) for each round. Each
round it corrects C more images in the widget's "next most uncertain" order (mean uncertainty of the weights in
use, as the widget's Most uncertain ranks it) or at random: the image's ground truth becomes its
human label. Then the arm's round runs.

Arms: ``none`` (no retraining), ``supervised`` (the round's recipe on the corrected images only: no unlabeled
images, no text pseudo-labels) and ``round`` (the plugin's round, its defaults). Per round and arm it records:

- Dice (per image, at the image's own size, with the model's clean-up) of the weights in use on the pile's images
  not yet corrected; paired t-tests against ``none`` on the images uncorrected in both arms;
- edit effort: the share of pixels the annotator changed on each image when it was corrected (the project's own
  record, ``changed``, of |model mask XOR truth| / area);
- the round's wall time, the guard's held-back Dice and whether the weights were installed;
- with ``--score``, Dice of the weights in use on another labeled folder (e.g. ``valid``).

It prints a table per round, writes JSON and a PNG plot (Dice and edit effort against the number of corrected
images). Example (the same-source scenario of docs/RESULTS.md)::

    python benchmarks/annotation_loop.py --model models/amvlm-qata --pile ../shared/data/qata_cov19/valid \\
        --per-round 10 --rounds 5 --work runs/loop/same --out benchmarks/results/loop-same
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json  # noqa: E402

ARMS = ("none", "supervised", "round")
ANNOTATOR = "simulated annotator"


@dataclass
class RoundRow:
    """The state of one arm after ``corrected`` images were corrected and the rounds so far ran."""

    arm: str
    round: int  # rounds run so far
    corrected: int  # images corrected so far
    dice: dict[str, float]  # per uncorrected image (in %)
    effort: list[float] = field(default_factory=list)  # % of pixels changed on the images corrected before it
    round_s: float | None = None  # wall time of the round that produced these weights
    installed: bool | None = None
    heldback_before: float | None = None  # the guard's figures (in %)
    heldback_after: float | None = None
    score: float | None = None  # mean Dice on --score (in %)
    score_dice: list[float] = field(default_factory=list)

    @property
    def mean_dice(self) -> float:
        return float(np.mean(list(self.dice.values()))) if self.dice else float("nan")

    @property
    def mean_effort(self) -> float | None:
        return float(np.mean(self.effort)) if self.effort else None


def _load_pile(folder: str, limit: int | None, seed: int):
    from napari_amvlm.data.dataset import read_records
    from napari_amvlm.data.split import spread_sample

    records = read_records(folder, require_masks=True)
    return [records[i] for i in spread_sample(range(len(records)), limit, seed)]


def _truth(record) -> np.ndarray:
    from napari_amvlm.io import read_mask

    return np.asarray(read_mask(record.mask)) != 0


def make_project(root: Path, records) -> tuple[object, dict[str, np.ndarray]]:
    """A project holding the pile, each image with its own sentence as its prompt; and each image's truth."""
    from napari_amvlm.project import Project

    project = Project.create(root, name=root.name)
    truth = {}
    with project.transaction():
        for rec in records:
            (image_id,) = project.add_images([rec.image])
            project.add_prompt(image_id, rec.text, author="dataset")
            truth[image_id] = _truth(rec)
    return project, truth


def _dice(mask: np.ndarray, truth: np.ndarray) -> float:
    from napari_amvlm.metrics import dice_iou

    return 100.0 * dice_iou(mask, truth)[0]


def _score_folder(segmenter, records) -> list[float]:
    from napari_amvlm.io import read_image
    from napari_amvlm.training.loop import model_cleanup

    out = []
    for rec in records:
        pred = segmenter.predict(read_image(rec.image), rec.text, cleanup=model_cleanup(segmenter))
        out.append(_dice(pred.mask, _truth(rec)))
    return out


def run_arm(arm: str, args, records, score_records, settings_kw: dict) -> list[RoundRow]:
    """One arm of the simulation; returns its row after each round (row 0: before any correction)."""
    from napari_amvlm.inference import Segmenter
    from napari_amvlm.model.hub import SEG_WEIGHTS_NAME
    from napari_amvlm.project import MaskKind
    from napari_amvlm.training.loop import most_uncertain, predict_image
    from napari_amvlm.training.rounds import JobState, RetrainJob, RetrainSettings

    project, truth = make_project(Path(args.work) / arm / "project", records)
    folder = Path(args.model)
    segmenter = Segmenter.from_folder(folder, "cpu")
    rng = random.Random(args.seed)
    random_order = sorted(truth)
    rng.shuffle(random_order)
    corrected: list[str] = []
    rows: list[RoundRow] = []
    last: dict = {}
    for r in range(args.rounds + 1):
        todo = [i for i in truth if i not in corrected]
        preds = {i: predict_image(segmenter, project, i) for i in todo}
        row = RoundRow(arm, r, len(corrected), {i: _dice(p.mask, truth[i]) for i, p in preds.items()}, **last)
        if score_records:
            row.score_dice = _score_folder(segmenter, score_records)
            row.score = float(np.mean(row.score_dice))
        rows.append(row)
        _print_progress(row)
        if r == args.rounds:
            break
        if args.order == "uncertain":
            chosen = most_uncertain({i: float(p.uncertainty.mean()) for i, p in preds.items()}, args.per_round)
        else:
            chosen = [i for i in random_order if i not in corrected][: args.per_round]
        sha = project.add_model(folder / SEG_WEIGHTS_NAME, name=folder.name).sha256
        effort = []
        with project.transaction():
            for i in chosen:  # the annotator sees the model's mask, then draws the truth over it
                project.write_prediction(i, preds[i].mask, model=sha, prompt=project.prompts(i)[-1].text)
                project.mark_corrected(i, truth[i], author=ANNOTATOR)
                effort.append(100.0 * project.mask_record(i, MaskKind.HUMAN).provenance.changed)
        corrected += chosen
        last = {"effort": effort}
        if arm == "none":
            continue
        settings = RetrainSettings(**{**settings_kw, "supervised_only": arm == "supervised", "device": "cpu",
                                      "seed": args.seed})
        t0 = time.perf_counter()
        job = RetrainJob(project, folder, settings)
        try:
            job.start()
        except ValueError as err:  # what the widget would say (e.g. too few corrected images to hold one back)
            print(f"[{arm}] round {r + 1} refused: {err}", flush=True)
            continue
        if job.wait() is not JobState.SUCCEEDED:
            raise RuntimeError(f"{arm} round {r + 1} failed: {job.message}")
        result = job.finalize("cpu")
        v = job.verdict
        last.update(round_s=time.perf_counter() - t0, installed=result.installed,
                    heldback_before=100 * v.mean_before, heldback_after=100 * v.mean_after)
        if result.installed:
            folder = result.folder
            segmenter = Segmenter.from_folder(folder, "cpu")
    return rows


def _print_progress(row: RoundRow) -> None:
    extra = f", round {row.round_s:.0f} s, installed {row.installed}" if row.round_s is not None else ""
    score = f", score set {row.score:.2f}" if row.score is not None else ""
    print(f"[{row.arm}] after round {row.round} ({row.corrected} corrected): Dice {row.mean_dice:.2f} on "
          f"{len(row.dice)} uncorrected images{score}{extra}", flush=True)


def compare(rows: dict[str, list[RoundRow]]) -> list[tuple]:
    """One table row per (round, arm): Dice on the uncorrected images and against ``none`` on the images
    uncorrected in both (difference, paired p), the score set likewise, edit effort, round time and the guard."""
    from napari_amvlm.metrics import paired_t_test

    out = []
    base = rows.get("none")
    for arm, arm_rows in rows.items():
        for k, row in enumerate(arm_rows):
            diff = p = sdiff = sp = None
            if base is not None and arm != "none" and k < len(base):
                common = sorted(set(row.dice) & set(base[k].dice))
                a, b = [row.dice[i] for i in common], [base[k].dice[i] for i in common]
                diff = float(np.mean(a) - np.mean(b))
                p = paired_t_test(a, b)[1] if len(common) > 1 else None
                if row.score_dice and base[k].score_dice:
                    sdiff = row.score - base[k].score
                    sp = paired_t_test(row.score_dice, base[k].score_dice)[1]
            out.append((row.round, row.corrected, arm, f"{row.mean_dice:.2f}", _f(diff, "+.2f"), _f(p, ".2g"),
                        _f(row.score, ".2f"), _f(sdiff, "+.2f"), _f(sp, ".2g"), _f(row.mean_effort, ".2f"),
                        _f(row.round_s, ".0f"), _guard(row)))
    return sorted(out, key=lambda t: (t[0], ARMS.index(t[2])))


HEADER = ("round", "corrected", "arm", "Dice uncorrected", "vs none", "p", "score-set Dice", "score vs none",
          "score p", "edit effort %", "round s", "held-back Dice before -> after")


def _f(x, fmt: str) -> str | None:
    return None if x is None else format(x, fmt)


def _guard(row: RoundRow) -> str | None:
    if row.installed is None:
        return None
    return f"{row.heldback_before:.1f} -> {row.heldback_after:.1f} {'installed' if row.installed else 'kept'}"


def _vs_none(rows: dict[str, list[RoundRow]], arm: str) -> list[tuple[int, float]]:
    """(corrected, mean Dice difference to ``none`` on the images uncorrected in both) per round of ``arm``."""
    base = rows["none"]
    out = []
    for k, row in enumerate(rows[arm][: len(base)]):
        common = sorted(set(row.dice) & set(base[k].dice))
        if common:
            out.append((row.corrected, float(np.mean([row.dice[i] - base[k].dice[i] for i in common]))))
    return out


def plot(rows: dict[str, list[RoundRow]], path: Path, title: str) -> Path:
    """Left: each arm's Dice against no retraining on the images uncorrected in both (the arms correct different
    images in the uncertain order, so their own means are not comparable); its mean Dice without ``none``.
    Right: edit effort."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    paired = "none" in rows
    for arm, arm_rows in rows.items():
        pts = _vs_none(rows, arm) if paired else [(r.corrected, r.mean_dice) for r in arm_rows]
        a.plot([c for c, _ in pts], [d for _, d in pts], marker="o", label=arm)
        eff = [(r.corrected, r.mean_effort) for r in arm_rows if r.mean_effort is not None]
        b.plot([c for c, _ in eff], [e for _, e in eff], marker="o", label=arm)
    a.set(xlabel="images corrected", title=title,
          ylabel="Dice vs no retraining, same images (points)" if paired else "Dice on the images not yet corrected (%)")
    b.set(xlabel="images corrected", ylabel="pixels changed per corrected image (%)", title="edit effort")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _report(rows: dict[str, list[RoundRow]], out: Path, title: str, record: dict) -> None:
    """Print the table, write OUT.png and OUT.json (``record``: what made the rows)."""
    table = compare(rows)
    print()
    print_table(table, HEADER)
    png = plot(rows, out.with_suffix(".png"), title)
    write_json(out.with_suffix(".json"), {
        **record, "title": title,
        "table": [dict(zip(HEADER, (str(c) if c is not None else None for c in t))) for t in table],
        "rows": {arm: [asdict(r) for r in arm_rows] for arm, arm_rows in rows.items()},
    })  # fmt: skip
    print(f"\nwrote {out.with_suffix('.json')} and {png}")


def replot(path: Path, out: Path | None) -> None:
    """The table and plot again from a JSON this script wrote (to OUT, default: beside it)."""
    import json

    data = json.loads(path.read_text())
    rows = {arm: [RoundRow(**r) for r in arm_rows] for arm, arm_rows in data["rows"].items()}
    a = data["args"]
    title = data.get("title") or f"{Path(a['pile']).name}: {a['per_round']} per round ({a['order']})"
    _report(rows, out or path.with_suffix(""), title, {k: data[k] for k in ("command", "args", "settings")})


def _settings_kw(pairs: list[str]) -> dict:
    """``--set key=value`` pairs for RetrainSettings (values parsed as Python literals when they are ones)."""
    import ast

    from napari_amvlm.training.rounds import RetrainSettings

    known = set(RetrainSettings.__dataclass_fields__)
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in known:
            raise SystemExit(f"unknown round setting {key!r} (one of {', '.join(sorted(known))})")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="the starting model folder (required unless --replot)")
    ap.add_argument("--pile", help="labeled image,mask,text folder: the images to annotate (required unless --replot)")
    ap.add_argument("--limit", type=int, help="a random sample of this many pile images (seeded)")
    ap.add_argument("--score", help="another labeled folder scored after each round (e.g. valid)")
    ap.add_argument("--score-limit", type=int, help="a random sample of this many --score images")
    ap.add_argument("--per-round", type=int, default=10, help="images corrected before each round (C)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--order", choices=("uncertain", "random"), default="uncertain")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="RetrainSettings fields for both training arms (default: the plugin's)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for inference and for each round's process (default: PyTorch's choice)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the pile sample, the random order and the rounds")
    ap.add_argument("--work", help="folder for the arms' projects (must not exist; required unless --replot)")
    ap.add_argument("--out", help="write OUT.json and OUT.png (default: WORK/loop)")
    ap.add_argument("--replot", type=Path, metavar="JSON", help="only print the table and redraw the plot of a run")
    args = ap.parse_args(argv)
    if args.replot:
        replot(args.replot, Path(args.out) if args.out else None)
        return 0
    missing = [f"--{k}" for k in ("model", "pile", "work") if not getattr(args, k)]
    if missing:
        ap.error(f"{', '.join(missing)} required")
    if Path(args.work).exists():
        raise SystemExit(f"{args.work} exists: give a new --work folder")
    import torch

    if args.threads:  # the simulator's own inference, and (unless --set cpu_threads=...) each round's process
        torch.set_num_threads(args.threads)
        args.set = [f"cpu_threads={args.threads}", *args.set]
    records = _load_pile(args.pile, args.limit, args.seed)
    score_records = _load_pile(args.score, args.score_limit, args.seed) if args.score else []
    settings_kw = _settings_kw(args.set)
    rows = {arm: run_arm(arm, args, records, score_records, settings_kw) for arm in args.arms}
    out = Path(args.out or Path(args.work) / "loop")
    title = f"{Path(args.pile).name}: {len(records)} images, {args.per_round} per round ({args.order})"
    _report(rows, out, title, {"command": " ".join(sys.argv), "args": vars(args), "settings": settings_kw})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
