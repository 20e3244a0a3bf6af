"""``amvlm train``, ``amvlm evaluate`` and ``amvlm segment``: stage-2 segmentation from the command line."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from ..config import MeanTeacherConfig, UNetConfig


def register(sub: argparse._SubParsersAction) -> None:
    _train_parser(sub)
    _evaluate_parser(sub)
    _segment_parser(sub)


def _labeled_names(args) -> list[str] | None:
    """The names given after --labeled (None with --labeled-fraction)."""
    if args.labeled != bool(args.names):
        raise ValueError("--labeled needs the labeled image names, last: --labeled -- NAME [NAME ...]"
                         if args.labeled else f"image names are only read with --labeled (got {args.names[0]!r})")
    return list(args.names) if args.labeled else None


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="text-guided Mean-Teacher training of the segmenter",
                       description="Train the text-mask generator and a U-Net Mean Teacher over a pre-trained "
                                   "AMVLM; the best teacher by validation Dice is written to OUT with the AMVLM.")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR", help="training folders (image,mask,text CSV)")
    p.add_argument("--val", metavar="DIR", help="validation folder (masks required); picks the best epoch")
    p.add_argument("--model", required=True, metavar="DIR", help="pre-trained AMVLM folder")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write")
    lab = p.add_mutually_exclusive_group(required=True)
    lab.add_argument("--labeled-fraction", type=float, help="seeded fraction of labeled images, in (0, 1]")
    lab.add_argument("--labeled", action="store_true",
                     help="the NAMEs (put them last, after --) are the labeled images")
    p.add_argument("names", nargs="*", metavar="NAME", help="with --labeled: labeled image names (file stems); "
                                                            "after `--`, so that no name is read as an option")
    p.add_argument("--no-text", action="store_true", help="plain Mean Teacher: no text-mask generator or fusion")
    p.add_argument("--no-cleanup", action="store_true",
                   help="the trained model's masks skip the clean-up of napari_amvlm/inference/postprocess.py by "
                        "default (for histology, where nuclei are smaller than the specks it removes)")
    p.add_argument("--flip-average", action="store_true",
                   help="the trained model's predictions average the image and its left-right mirror (read with "
                        "the sentence's sides swapped); validation during training uses it too")
    p.add_argument("--field", type=int, default=0, metavar="PIXELS",
                   help="side in pixels of what one training image shows (e.g. 1000 for 1000-pixel histology tiles): "
                        "larger images are segmented by overlapping windows of that size; 0 (default): every image "
                        "whole, whatever its size (chest films)")
    p.add_argument("--init", metavar="DIR", help="continue from this model folder's trained segmenter (its "
                                                 "settings are kept; --no-text and --base are ignored)")
    p.add_argument("--init-unet", metavar="DIR", help="start the student and teacher U-Net from this model "
                   "folder's U-Net (e.g. a --supervised-only run); its U-Net settings replace --base/--levels")
    p.add_argument("--supervised-only", action="store_true",
                   help="baseline: the U-Net on the labeled images only (no unlabeled images, no text)")
    d, u = MeanTeacherConfig(), UNetConfig()
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the labeled images (default %(default)s)")
    p.add_argument("--labeled-batch", type=int, default=d.labeled_batch,
                   help="labeled images per step (default %(default)s)")
    p.add_argument("--unlabeled-batch", type=int, default=d.unlabeled_batch,
                   help="unlabeled images per step (default %(default)s)")
    p.add_argument("--base", type=int, default=u.base, help="U-Net channels at the first level (default %(default)s)")
    p.add_argument("--levels", type=int, default=u.levels, help="U-Net resolution levels (default %(default)s)")
    p.add_argument("--downsample", type=int, default=u.downsample,
                   help="the U-Net works at 1/N of the model size, 224 px (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of the U-Net (default %(default)s)")
    p.add_argument("--lr-floor", type=float, default=d.lr_floor,
                   help="lowest learning rate of the schedule (default %(default)s)")
    p.add_argument("--schedule", choices=("cosine", "restarts"), default=d.lr_schedule,
                   help="cosine: one decay over the run; restarts: cosine warm restarts every 10 epochs "
                        "(default %(default)s)")
    p.add_argument("--bce", choices=("plain", "balanced"), default=d.bce,
                   help="BCE term of the 0.5 Dice + 0.5 BCE loss (default %(default)s)")
    p.add_argument("--rampup-epochs", type=float, default=d.rampup_epochs,
                   help="epochs over which the unlabeled weight ramps up (sigmoid; default %(default)s)")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs,
                   help="supervised-only epochs before the unlabeled loss starts (default %(default)s)")
    p.add_argument("--textmask-lr", type=float, default=d.textmask_lr,
                   help="Adam learning rate of the text-mask decoder (0 keeps it fixed; default %(default)s)")
    p.add_argument("--ema-alpha", type=float, default=d.ema_alpha,
                   help="EMA decay of the teacher (default %(default)s)")
    p.add_argument("--no-ema-warmup", action="store_true",
                   help="the teacher's EMA decay is --ema-alpha from the first step (fine-tuning trained weights) "
                        "instead of ramping up from 0")
    p.add_argument("--freeze-bn", action="store_true",
                   help="BatchNorm statistics stay as they start (fine-tuning with small batches of few images)")
    p.add_argument("--adapt-bn", type=float, default=d.adapt_bn, metavar="BLEND",
                   help="before training, re-estimate the U-Net's BatchNorm statistics over the training images and "
                        "keep this blend of them with the starting ones (0: off, 1: the images' alone; default "
                        "%(default)s)")
    p.add_argument("--consistency-weight", type=float, default=d.consistency_weight,
                   help="weight of the unlabeled (pseudo-label) loss after its ramp-up (default %(default)s)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                   help="stop after this many minutes of training (validated and written), whatever --epochs says")
    p.add_argument("--budget-clock", choices=("wall", "cpu"), default=d.budget_clock,
                   help="what --time-budget counts: wall time, or CPU time of this process (default %(default)s)")
    p.add_argument("--keep", choices=("best", "last"), default=d.keep,
                   help="write the best model by validation Dice, or the last one (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's choice)")
    p.add_argument("--vflip", type=float, default=d.vflip_p, metavar="P",
                   help="probability of a vertical flip, upper/lower rewritten in the sentence (default %(default)s; "
                        "for images with no up and down, such as histology tiles)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seeds the labeled split, shuffling and initialisation (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.safetensors")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--val-limit", type=int, default=None, help="validate on the first N images only")
    p.add_argument("--log-every", type=int, default=10, help="print one progress line every N steps "
                                                             "(default %(default)s)")
    p.add_argument("--progress-json", action="store_true",
                   help="print every event as one JSON object per line (for the napari plugin)")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import os

    import torch.distributed as dist

    from ..config import SegmenterConfig, save_json
    from ..training.events import log_line
    from ..training.mean_teacher import train_mean_teacher
    from ..training.progress import event_to_json

    labeled = _labeled_names(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    cfg = MeanTeacherConfig(epochs=args.epochs, labeled_batch=args.labeled_batch,
                            unlabeled_batch=0 if args.supervised_only else args.unlabeled_batch, seed=args.seed,
                            rampup_epochs=args.rampup_epochs, warmup_epochs=args.warmup_epochs, lr=args.lr,
                            lr_floor=args.lr_floor, lr_schedule=args.schedule, bce=args.bce, keep=args.keep,
                            time_budget_s=60.0 * (args.time_budget or 0.0), budget_clock=args.budget_clock,
                            num_threads=args.threads, vflip_p=args.vflip, textmask_lr=args.textmask_lr,
                            ema_alpha=args.ema_alpha, ema_warmup=not args.no_ema_warmup, freeze_bn=args.freeze_bn,
                            adapt_bn=args.adapt_bn, consistency_weight=args.consistency_weight)
    seg_cfg = SegmenterConfig(use_text=not (args.no_text or args.supervised_only), cleanup=not args.no_cleanup,
                              flip_average=args.flip_average, field=max(0, args.field),
                              unet=UNetConfig(base=args.base, levels=args.levels, downsample=args.downsample))
    out = Path(args.out)
    if rank == 0:
        _check_inputs(args.data, args.val, args.val_limit)  # a bad file stops the command before it writes
        out.mkdir(parents=True, exist_ok=True)
        save_json(cfg, out / "train_config.json")
        _write_training_vocabulary(out, args.data, [args.model, args.init])
    try:
        for ev in train_mean_teacher(args.data, args.val, args.model, out, cfg, seg_cfg, args.labeled_fraction,
                                     labeled, args.device, args.resume, args.max_steps, args.val_limit, args.init,
                                     init_unet=args.init_unet):
            if rank == 0 and args.progress_json:
                line = event_to_json(ev)
                if line:
                    print(line, flush=True)
                continue
            line = log_line(ev, args.log_every) if rank == 0 else None
            if line:
                print(line, flush=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _write_training_vocabulary(out: Path, data: list[str], models: list[str | None]) -> None:
    """OUT/vocabulary.txt: the words of the training sentences plus those of the models it starts from (for the
    prompt notices of napari_amvlm.inference.prompts)."""
    from ..inference.prompts import folder_sentences, read_vocabulary, write_vocabulary

    keep = set().union(*(read_vocabulary(m) or () for m in models if m))
    write_vocabulary(out, [t for folder in data for t in folder_sentences(folder)], keep)


def _check_inputs(data: list[str], val: str | None, val_limit: int | None) -> None:
    from ..data.dataset import check_files

    check_files(data)
    if val:
        check_files(val, require_masks=True, limit=val_limit)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="per-image Dice and IoU at 0.5 on a folder (224x224)",
                       description="Segment every image of a labeled folder with its own sentence and print the mean "
                                   "Dice and IoU at threshold 0.5, at the model's input size (224x224). The masks go "
                                   "through the clean-up `amvlm segment` applies unless --no-postprocess.")
    p.add_argument("--model", required=True, metavar="DIR", help="model folder with a trained segmenter")
    p.add_argument("--data", required=True, metavar="DIR", help="folder with an image,mask,text CSV (masks required)")
    _mode_argument(p)
    p.add_argument("--per-image", metavar="FILE.csv", help="write name,dice,iou per image")
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    p.add_argument("--swap-sides", action="store_true",
                   help="prompt with each sentence's left/right swapped (position-word check)")
    p.add_argument("--one-side-only", action="store_true",
                   help="keep only images whose sentence names exactly one of left/right")
    p.add_argument("--no-position-prior", action="store_true",
                   help="switch off the text mask's learned position prior (napari_amvlm/model/textmask.py), to see "
                        "what the vision-language model itself contributes")
    p.add_argument("--sides", choices=("image", "patient"), default="image",
                   help="what left/right in the folder's sentences mean: image (default), the datasets' "
                        "convention; patient reads them mirrored (a check that the masks follow the convention)")
    p.add_argument("--zones", action="store_true",
                   help="zone check instead: on images whose sentence names only upper (or only lower) zones, the "
                        "mask's share in each third of the lung field, with the true sentence and with the zone "
                        "words swapped (Markdown table)")
    p.add_argument("--zone-limit", type=int, metavar="N", help="with --zones: the first N images of each group")
    _postprocess_argument(p)
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda | mps (default %(default)s)")
    p.set_defaults(func=_evaluate)


def _mode_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("fused", "segmenter", "textmask"), default="fused",
                   help="fused (default): the U-Net and the prompt's text mask combined, as the plugin shows; "
                        "segmenter: the U-Net alone (ignores the prompt); textmask: the text mask alone")


def _postprocess_argument(p: argparse.ArgumentParser) -> None:
    from ..inference.postprocess import Cleanup

    p.add_argument("--no-postprocess", action="store_true",
                   help="keep the raw mask (default: as the model folder says: "
                        f"{Cleanup().describe().replace('%', '%%')} for the chest X-ray model, nothing for the "
                        "histology one; see napari_amvlm/inference/postprocess.py)")


def _cleanup(args: argparse.Namespace, cfg):
    """The clean-up for a command's masks: the model's default (``cfg``, its SegmenterConfig) unless turned off."""
    from ..inference.postprocess import Cleanup

    return None if args.no_postprocess or not cfg.cleanup else Cleanup()


def _evaluate(args: argparse.Namespace) -> int:
    from ..data.dataset import ImageTextDataset
    from ..data.text import flip_text_horizontal, sides
    from ..device import resolve_device
    from ..evaluation import evaluate
    from ..model.hub import load_segmenter

    dev = resolve_device(args.device)
    seg = load_segmenter(args.model, dev)
    if args.no_position_prior and seg.textmask is not None:
        seg.textmask.prior = None
    ds = ImageTextDataset(args.data, size=seg.amvlm.cfg.vision.image_size, require_masks=True)
    if args.one_side_only:
        ds.keep([i for i, t in enumerate(ds.texts) if sides(t) in ({"left"}, {"right"})])
    if args.zones:
        return _zones(args, seg, ds, dev)
    texts = [flip_text_horizontal(t) for t in ds.texts] if args.swap_sides else None
    cleanup = _cleanup(args, seg.cfg)
    res = evaluate(seg, ds, mode=args.mode, device=dev, texts=texts, sides=args.sides, cleanup=cleanup)
    if args.per_image:
        with open(args.per_image, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "dice", "iou"])
            w.writerows(zip(res.names, res.dice, res.iou))
    if args.json:
        summary = {"dice": res.mean_dice, "miou": res.mean_iou, "n": len(res.dice), "mode": args.mode,
                   "swap_sides": args.swap_sides, "sides": args.sides, "postprocess": not args.no_postprocess}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(res.line())
    return 0


def _zones(args: argparse.Namespace, seg, ds, dev) -> int:
    from dataclasses import asdict

    from ..evaluation import zone_figure, zone_table

    cleanup = _cleanup(args, seg.cfg)
    rows, figure = zone_figure(seg, ds, limit=args.zone_limit, device=dev, cleanup=cleanup, mode=args.mode)
    if not figure:
        raise ValueError(f"no sentence in {args.data} names only upper or only lower zones")
    print(zone_table(rows, figure))
    for r in figure:
        print(f"{r.zone} zones: the named third holds more of the mask than each other third: "
              f"{'yes' if r.holds else 'NO'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"lung_rows": rows, "zones": [asdict(r) for r in figure],
                                               "mode": args.mode, "postprocess": not args.no_postprocess},
                                              indent=2) + "\n")
    return 0


def _segment_parser(sub) -> None:
    from ..inference.prompts import SIDE_HELP

    p = sub.add_parser(
        "segment", help="segment one image, stack or volume with a text prompt",
        description="Segment an image for a text prompt and write the mask: a 2D image (gray, RGB, 16-bit or "
                    "float), a DICOM file (single or multi-frame) or a folder holding one DICOM series, or a NIfTI "
                    "image or volume (stacks slice by slice). Left and right in the prompt mean the patient's when "
                    "the file says how the patient lies (DICOM orientation tags, a NIfTI affine), else the image's "
                    "sides as displayed; --sides chooses. Words the model cannot read (another alphabet, outside its "
                    "training vocabulary, past its token limit) are ignored with a warning naming them.",
        epilog="example: amvlm segment --model models/amvlm-qata --image sample_data/qata/images/covid_2804.png "
               "--text 'lower right lung' --sides patient --out mask.png")
    p.add_argument("--model", required=True, metavar="DIR", help="model folder with a trained segmenter")
    p.add_argument("--image", required=True, metavar="PATH",
                   help="the image: PNG, TIFF, ..., a DICOM file or series folder, a NIfTI file (.nii, .nii.gz)")
    p.add_argument("--text", required=True, help="the description, e.g. 'lower left lung'")
    p.add_argument("--sides", choices=("image", "patient"), default=None,
                   help=f"what left/right in --text mean. image: {SIDE_HELP['image']}; patient: "
                        f"{SIDE_HELP['patient']}. Default: patient when the file says how the patient lies, else "
                        "image")
    p.add_argument("--out", required=True, metavar="MASK",
                   help="mask file to write: .png (0 and 255, one plane), .tif (0 and 255, planes as pages), "
                        ".nii/.nii.gz (NIfTI image: its affine) or .dcm (DICOM image: a DICOM-SEG referencing it)")
    _mode_argument(p)
    _postprocess_argument(p)
    p.add_argument("--uncertainty", metavar="FILE.tif", help="also write the uncertainty map (float32 TIFF)")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda | mps (default %(default)s)")
    p.set_defaults(func=_segment)


def _segment(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from .._atomic import atomic_write
    from ..device import resolve_device
    from ..inference import Segmenter
    from ..io import ImageError, check_mask_format, read_scan, write_mask

    scan = read_scan(args.image)
    check_mask_format(args.out, scan)  # a mask it cannot write stops the command before any work
    seg = Segmenter.from_folder(args.model, resolve_device(args.device))
    sides = args.sides or ("patient" if scan.orientation else "image")
    for z in range(scan.planes):  # every plane is checked before any is segmented
        try:
            scan.plane(z).check(seg.patch_size)
        except ImageError as err:
            raise ImageError(f"slice {z + 1} of {scan.planes}: {err}" if scan.planes > 1 else str(err)) from err
    _warn_if_unlike_training(args.model, scan.plane(0).pixels)
    masks, uncertainty, pred = [], [], None
    for z in range(scan.planes):
        pred = seg.predict(scan.plane(z), args.text, mode=args.mode, sides=sides, cleanup=_cleanup(args, seg.seg.cfg))
        masks.append(pred.mask)
        uncertainty.append(pred.uncertainty)
        if scan.planes > 1 and ((z + 1) % max(1, scan.planes // 10) == 0 or z + 1 == scan.planes):
            print(f"segmented {z + 1} of {scan.planes} slices", file=sys.stderr)
    for notice in pred.notices:
        print(f"amvlm segment: warning: {notice}", file=sys.stderr)
    if scan.kind != "image" or sides == "patient":  # which convention was used, and why
        unknown = scan.kind != "image" and scan.orientation is None
        print(pred.sides_note + (" (the file does not say how the image is oriented)" if unknown else ""))
    if pred.prompt is not None and pred.prompt.text != args.text.strip():
        print(f"the model read the prompt as: '{pred.prompt.text}' (left/right: the image's sides"
              + (", in the standard view)" if sides == "patient" and scan.orientation else ")"))
    if pred.windows:
        print(f"each plane was segmented by {pred.windows} overlapping windows of {seg.field} pixels, the model's "
              "field")
    mask = np.stack(masks) if scan.planes > 1 else masks[0]
    out = write_mask(args.out, mask, scan, label=args.text)
    if args.uncertainty:
        import tifffile

        unc = np.stack(uncertainty) if scan.planes > 1 else uncertainty[0]
        atomic_write(Path(args.uncertainty), lambda p: tifffile.imwrite(p, unc.astype(np.float32)))
    n = int(mask.sum())
    print(f"{out}: {n} foreground pixel{'s' if n != 1 else ''} of {mask.size} ({100.0 * mask.mean():.1f}%)")
    return 0


def _warn_if_unlike_training(model: str, image) -> None:
    """A ``warning:`` line when the image is unlike the model's training images (its trained_on.json), naming
    the bundled model it fits, if any."""
    import sys

    from ..model.trained_on import check_fit, fitting_models, image_stats, read_trained_on
    from ..resources import models_dir

    trained_on, stats = read_trained_on(model), image_stats(image)
    fit = check_fit(trained_on, stats)
    if fit.ok:
        return
    others = [f.name for f in fitting_models(stats, sorted(models_dir().iterdir()))]
    hint = f"; it looks like the images of the bundled {' or '.join(others)}" if others else ""
    print(f"amvlm segment: warning: the image is {' and '.join(fit.reasons)}, unlike the model's training images, "
          f"{trained_on.describe()}: its mask may mean little{hint}", file=sys.stderr)
