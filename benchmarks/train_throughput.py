"""Training throughput (images/s) of stage-2 Mean Teacher, against a plain PyTorch loop over the same model.

- engine: ``train_mean_teacher`` (the loop ``amvlm train`` and the plugin's rounds run) on 32 labeled + 200
  unlabeled real QaTa images with the plugin's round batch sizes (``RetrainSettings``); the figure is the median
  of the ``images_per_s`` its step events report, after a few warm-up steps;
- plain: the same parts (frozen AMVLM, text-mask generator, student U-Net, EMA teacher) and the same batch,
  preloaded on the device, in a bare forward / BCE loss / backward / Adam / EMA loop: the simple limit.

    .venv/bin/python benchmarks/train_throughput.py [--quick] [--device cpu|cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_model, print_table, qata_items, stats, write_json, write_training_csv


def engine(model_dir: Path, work: Path, n_labeled: int, n_unlabeled: int, steps: int, skip: int,
           device: str) -> dict:
    """Median images/s of ``train_mean_teacher`` steps ``skip+1 .. skip+steps``."""
    from napari_amvlm.config import MeanTeacherConfig
    from napari_amvlm.model.hub import has_segmenter
    from napari_amvlm.training.events import StartEvent, StepEvent
    from napari_amvlm.training.mean_teacher import train_mean_teacher
    from napari_amvlm.training.rounds import RetrainSettings

    items, source = qata_items("train", n_labeled + n_unlabeled)
    csv_path = write_training_csv(items, work / "data" / "text.csv")
    s = RetrainSettings()
    cfg = MeanTeacherConfig(epochs=s.epochs, labeled_batch=s.labeled_batch, unlabeled_batch=s.unlabeled_batch,
                            seed=s.seed)
    per_step, dev, t_mark, t_last = [], None, None, None
    init = model_dir if has_segmenter(model_dir) else None  # a round continues from the segmenter in use
    for ev in train_mean_teacher(csv_path, None, model_dir, work / "out", cfg,
                                 labeled_names=[it.name for it in items[:n_labeled]], device=device,
                                 max_steps=skip + steps, init=init):
        if isinstance(ev, StartEvent):
            dev, t_mark = ev.device, (time.perf_counter() if skip == 0 else None)
        elif isinstance(ev, StepEvent) and ev.step == skip:
            t_mark = time.perf_counter()
        elif isinstance(ev, StepEvent) and ev.step > skip:
            per_step.append(ev.images_per_s)
            t_last = time.perf_counter()
    wall = t_last - t_mark if t_mark and t_last else math.nan  # includes the end-of-epoch checkpoints
    batch = s.labeled_batch + s.unlabeled_batch
    return {"img_per_s": stats(per_step, 2), "wall_img_per_s": round(steps * batch / wall, 2), "device": dev,
            "batch": {"labeled": s.labeled_batch, "unlabeled": s.unlabeled_batch}, "images": source,
            "warmup_steps": skip}


def plain_loop(model_dir: Path, steps: int, skip: int, device: str) -> dict:
    """Median images/s of a bare training loop over the same model parts and batch size (preloaded data)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from napari_amvlm.config import MeanTeacherConfig
    from napari_amvlm.data.pixels import to_model_input
    from napari_amvlm.device import autocast, resolve_device
    from napari_amvlm.io import read_image, read_mask
    from napari_amvlm.model.hub import load_segmenter
    from napari_amvlm.training.ema import EMATeacher
    from napari_amvlm.training.rounds import RetrainSettings

    dev = resolve_device(device)
    s, mt = RetrainSettings(), MeanTeacherConfig()
    nl, nu = s.labeled_batch, s.unlabeled_batch
    items, _ = qata_items("train", nl + nu)
    torch.manual_seed(0)
    seg = load_segmenter(model_dir, dev).train()
    size = seg.amvlm.cfg.vision.image_size
    x = torch.from_numpy(np.stack([to_model_input(read_image(it.image), size) for it in items]))
    y = torch.stack([torch.from_numpy(read_mask(it.mask, size)).float()[None] for it in items[:nl]])
    x, y, texts = x.to(dev), y.to(dev), [it.text for it in items]
    teacher = EMATeacher(seg.unet, alpha_max=mt.ema_alpha)
    params = list(seg.unet.parameters()) + (list(seg.textmask.parameters()) if seg.textmask is not None else [])
    opt = torch.optim.Adam(params, lr=mt.lr)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    for step in range(skip + steps):
        sync()
        t0 = time.perf_counter()
        with autocast(dev):
            with torch.no_grad():
                pseudo = (torch.sigmoid(teacher(x[nl:])) > 0.5).float()
                if seg.textmask is not None:
                    tokens, grid, sentence = seg.frozen_embeddings(x, texts)
            logits = seg.unet(x + 0.05 * torch.randn_like(x))
            loss = F.binary_cross_entropy_with_logits(logits[:nl], y)
            loss = loss + F.binary_cross_entropy_with_logits(logits[nl:], pseudo)
            if seg.textmask is not None:
                tm = seg.textmask(tokens, grid, sentence, x.shape[-2:], texts)
                loss = loss + F.binary_cross_entropy_with_logits(tm.logits[:nl], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        teacher.update(seg.unet, step)
        float(loss.detach())  # the engine reads its losses every step too
        sync()
        if step >= skip:
            times.append(time.perf_counter() - t0)
    return {"img_per_s": stats([(nl + nu) / t for t in times], 2), "device": str(dev), "warmup_steps": skip}


def measure(model_dir: Path, n_labeled: int = 32, n_unlabeled: int = 200, steps: int = 40, skip: int = 3,
            device: str = "cpu") -> dict:
    """Engine and plain-loop throughput on ``device`` and their ratio (measured in the same run)."""
    import torch

    with tempfile.TemporaryDirectory(prefix="amvlm-bench-train-") as work:
        eng = engine(model_dir, Path(work), n_labeled, n_unlabeled, steps, skip, device)
    plain = plain_loop(model_dir, steps, skip, device)
    ratio = eng["img_per_s"]["median"] / plain["img_per_s"]["median"] if plain["img_per_s"]["median"] else None
    return {"engine": eng, "plain": plain, "engine_vs_plain": round(ratio, 3) if ratio else None,
            "torch_threads": torch.get_num_threads(), "labeled": n_labeled, "unlabeled": n_unlabeled}


def rows(res: dict, suffix: str = "") -> list[tuple]:
    e, p = res["engine"]["img_per_s"], res["plain"]["img_per_s"]
    dev = res["engine"]["device"]
    return [(f"training, engine loop ({dev}){suffix}", e["median"], e["min"], e["max"], e["n"]),
            (f"training, plain PyTorch loop ({dev}){suffix}", p["median"], p["min"], p["max"], p["n"]),
            (f"engine / plain ({dev})", res["engine_vs_plain"], None, None, None)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps on a few images (checks that it runs)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    n = (4, 8, 3, 1) if args.quick else (32, 200, 40, 3)
    with benchmark_model(args.model) as (model, weights):
        res = measure(model, *n, device=args.device) | {"model": str(model), "segmenter_weights": weights}
    print_table(rows(res), ("figure", "median img/s", "min", "max", "n steps"))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
