"""Stage 2: text-guided Mean-Teacher segmentation, as a generator of typed events (CLI, plugin and DDP alike).

Each step takes a labeled and an unlabeled batch (horizontal flips rewrite the sentences), and:
1. the frozen AMVLM gives patch tokens and each image's own sentence embedding;
2. the text-mask generator gives T; its loss is tg_weight * L_tg (all images) + 0.5 Dice + 0.5 BCE on the
   labeled ones (reported as ``text/tg`` and ``text/sup``);
3. the student U-Net sees a photometrically perturbed view, the EMA teacher the clean one;
4. labeled loss: 0.5 Dice + 0.5 class-balanced BCE; unlabeled loss: the same against pseudo-labels
   fuse(P_teacher, T) > 0.5 weighted by confidence |2 fused - 1| (teacher alone with ``use_text=False``),
   times a sigmoid ramp-up;
5. the teacher follows the student by EMA (its BatchNorm statistics come from its own passes over the clean
   unlabeled batches; with ``freeze_bn``, as in a fine-tuning round, no BatchNorm statistics change at all). After each epoch the teacher is validated (Dice at 0.5) and the best one (or the last,
   ``keep="last"``) is written as a model folder (AMVLM + segmenter), atomically. A run without unlabeled
   images (supervised only) has no teacher: the student is validated and written.

Under ``torchrun`` (torch.distributed initialised) each rank takes its share of every batch, gradients are
averaged by DistributedDataParallel, BatchNorm buffers are broadcast from rank 0, and only rank 0 writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..config import MeanTeacherConfig, SegmenterConfig
from ..data.dataset import ImageTextDataset, collate
from ..data.split import labeled_split
from ..data.transforms import PairTransform, photometric_view
from ..device import autocast, resolve_device
from ..evaluation import evaluate
from ..inference.fusion import confidence, pseudo_label
from ..losses.functional import same_text_targets
from ..losses.segmentation import segmentation_loss
from ..losses.text_guided import text_guided_loss
from ..model.batchnorm import image_batches, reestimate_batchnorm
from ..model.hub import load_model, load_stage2, read_segmenter, save_segmenter
from ..model.segmenter import TextGuidedSegmenter
from .checkpoint import RESUME_NAME, load_resume, save_resume
from .ema import EMATeacher
from .events import CheckpointEvent, DoneEvent, MetricsEvent, StartEvent, StepEvent
from .frozen_cache import FrozenEmbeddings
from .ramps import sigmoid_rampup


class _Trainable(nn.Module):
    """The parts stage 2 optimises, in one module so that DDP can wrap them."""

    def __init__(self, seg: TextGuidedSegmenter):
        super().__init__()
        self.unet = seg.unet
        self.textmask = seg.textmask

    def forward(self, student_view, tokens, grid, sentence, texts):
        tm = None
        if self.textmask is not None:
            learns = any(p.requires_grad for p in self.textmask.parameters())
            with torch.set_grad_enabled(learns and torch.is_grad_enabled()):  # a kept decoder needs no graph
                tm = self.textmask(tokens, grid, sentence, student_view.shape[-2:], texts)
        return self.unet(student_view), tm


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _epoch_order(idx: Sequence[int], seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return [idx[i] for i in torch.randperm(len(idx), generator=g).tolist()]


def _batch_ids(labeled, unlabeled, cfg: MeanTeacherConfig, step: int, steps_per_epoch: int):
    """Labeled and unlabeled image indices of global step ``step`` (a pure function of the step)."""
    epoch, pos = divmod(step, steps_per_epoch)
    lab = _epoch_order(labeled, cfg.seed, epoch)
    lab_ids = [lab[(pos * cfg.labeled_batch + k) % len(lab)] for k in range(cfg.labeled_batch)]
    unl_ids: list[int] = []
    if unlabeled:
        start = step * cfg.unlabeled_batch
        for k in range(cfg.unlabeled_batch):
            cycle, off = divmod(start + k, len(unlabeled))
            unl_ids.append(_epoch_order(unlabeled, cfg.seed + 1, cycle)[off])
    return lab_ids, unl_ids


def _lr_factor(step: int, steps_per_epoch: int, cfg: MeanTeacherConfig, progress: float) -> float:
    """Multiplier of the base lr between 1 and lr_floor / lr: cosine warm restarts (period restart_epochs), or
    with ``lr_schedule="cosine"`` one cosine over the run, ``progress`` in [0, 1] being how much of it is done."""
    if cfg.lr_schedule == "cosine":
        t = min(max(progress, 0.0), 1.0)
    else:
        t = (step / steps_per_epoch) % cfg.restart_epochs / cfg.restart_epochs
    floor = cfg.lr_floor / cfg.lr if cfg.lr > 0 else 1.0
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def _load(ds, ids, transform, g, device):
    """(images, masks, sentences, keys): keys = (dataset index, (hflip, vflip)) name each image's content."""
    items, keys = [], []
    for i in ids:
        it = ds[i]
        it["image"], it["mask"], it["text"], flipped = transform.apply(it["image"], it["mask"], it["text"], g)
        items.append(it)
        keys.append((i, flipped))
    b = collate(items)
    images = b["image"].to(device).contiguous(memory_format=torch.channels_last)
    return images, b["mask"].to(device), b["text"], keys


def _losses(seg, trainable, teacher, frozen, images, masks, texts, keys, n_lab, step, steps_per_epoch, cfg, g):
    tokens, grid, sentence = frozen(images, keys, texts) if seg.textmask is not None else (None, None, None)
    student_view = photometric_view(images, generator=g, strength=cfg.perturb_strength)
    logits, tm = trainable(student_view, tokens, grid, sentence, texts)
    sup = segmentation_loss(logits[:n_lab], masks[:n_lab], bce=cfg.bce)
    out = {"sup/dice": sup["dice"], "sup/bce": sup["bce"]}
    total = sup["loss"]
    if tm is not None:
        tau = seg.amvlm.cfg.loss.temperature
        tg = text_guided_loss(tm.dense, tm.low_prob, sentence, tau, same_text_targets(texts, images.device))["loss"]
        tsup = segmentation_loss(tm.logits[:n_lab], masks[:n_lab], bce=cfg.bce)["loss"]
        out.update({"text/tg": tg, "text/sup": tsup})
        total = total + cfg.tg_weight * tg + tsup
    if images.shape[0] > n_lab:
        with torch.no_grad():
            p = torch.sigmoid(teacher(images[n_lab:], update_stats=not cfg.freeze_bn))
            if tm is not None:
                target, weight = pseudo_label(p, tm.prob[n_lab:].detach(), seg.cfg.fusion_lambda)
            else:
                target, weight = (p > 0.5).float(), confidence(p)
        unsup = segmentation_loss(logits[n_lab:], target, weight, bce=cfg.bce)["loss"]
        ramp = cfg.consistency_weight * unlabeled_weight(step, steps_per_epoch, cfg)
        out.update({"unsup": unsup, "ramp": torch.tensor(ramp)})
        total = total + ramp * unsup
    out["loss"] = total
    return out


def _freeze_batchnorm(seg: TextGuidedSegmenter) -> None:
    """BatchNorm layers of the trained parts normalise with their running statistics and do not update them (their
    affine weights still learn)."""
    for part in (seg.unet, seg.textmask):
        for m in part.modules() if part is not None else ():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def unlabeled_weight(step: int, steps_per_epoch: int, cfg: MeanTeacherConfig) -> float:
    """Ramp of the unlabeled loss in [0, 1]: 0 during the supervised warm-up, then the sigmoid ramp-up."""
    start = cfg.warmup_epochs * steps_per_epoch
    if step < start:
        return 0.0
    return sigmoid_rampup(step - start, cfg.rampup_epochs * steps_per_epoch)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _check_config(cfg: MeanTeacherConfig) -> None:
    if cfg.lr_schedule not in ("restarts", "cosine"):
        raise ValueError(f"lr_schedule must be 'restarts' or 'cosine', not {cfg.lr_schedule!r}")
    if cfg.keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', not {cfg.keep!r}")
    if cfg.budget_clock not in CLOCKS:
        raise ValueError(f"budget_clock must be 'wall' or 'cpu', not {cfg.budget_clock!r}")
    if cfg.time_budget_s < 0 or cfg.warmup_epochs < 0:
        raise ValueError("time_budget_s and warmup_epochs must be >= 0")
    if not 0.0 <= cfg.adapt_bn <= 1.0:
        raise ValueError(f"adapt_bn must be in [0, 1], got {cfg.adapt_bn}")


def train_mean_teacher(data: str | Path | Sequence, val: str | Path | None, model: str | Path, out: str | Path,
                       cfg: MeanTeacherConfig | None = None, seg_cfg: SegmenterConfig | None = None,
                       labeled_fraction: float | None = None, labeled_names: Sequence[str] | None = None,
                       device: str = "auto", resume: bool = False, max_steps: int | None = None,
                       val_limit: int | None = None, init: str | Path | None = None,
                       init_unet: str | Path | None = None) -> Iterator[object]:
    """Train the segmenter over a pre-trained AMVLM folder ``model``; write the best teacher to ``out``.

    ``init``: a model folder with a trained segmenter to continue from (its settings replace ``seg_cfg``; the
    student and the teacher both start from its weights), as the plugin does for each new round.
    ``init_unet``: a model folder whose U-Net (settings and weights) the student and the teacher start from, with
    a new text-mask generator (e.g. a supervised-only run continued with unlabeled images and text).
    """
    cfg = cfg or MeanTeacherConfig()
    _check_config(cfg)
    init_state = None
    if init is not None:
        seg_cfg, init_state = read_segmenter(init)
    seg_cfg = seg_cfg or SegmenterConfig()
    unet_state = None
    if init_unet is not None:
        src_cfg, src_state = read_segmenter(init_unet)
        seg_cfg = replace(seg_cfg, unet=src_cfg.unet)
        unet_state = {k[len("unet."):]: v for k, v in src_state.items() if k.startswith("unet.")}
    rank, world = _rank_world()
    dev = resolve_device(device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(out)
    amvlm = load_model(model, dev)
    size = amvlm.cfg.vision.image_size
    ds = ImageTextDataset(data, size=size)
    labeled, unlabeled = labeled_split([r.name for r in ds.records], labeled_fraction, labeled_names, cfg.seed)
    no_mask = [ds.records[i].name for i in labeled if ds.records[i].mask is None]
    if no_mask:
        raise ValueError(f"labeled images without a mask: {', '.join(no_mask[:5])}")
    val_ds = ImageTextDataset(val, size=size, require_masks=True) if val else None
    if val_ds is not None and val_limit:
        val_ds.keep(range(min(val_limit, len(val_ds))))
    torch.manual_seed(cfg.seed)
    seg = TextGuidedSegmenter(amvlm, seg_cfg)
    if init_state is not None:
        load_stage2(seg, init_state, str(init))
    if unet_state is not None:
        seg.unet.load_state_dict(unet_state)
    seg = seg.to(dev)
    resume_path = out / RESUME_NAME
    resuming = resume and resume_path.is_file()
    if cfg.adapt_bn > 0 and not resuming:  # a resumed run loads the statistics it had re-estimated
        reestimate_batchnorm(seg.unet, image_batches(ds, seg_cfg.flip_average, dev), cfg.adapt_bn)
    seg.unet.to(memory_format=torch.channels_last)  # ~1.4x faster U-Net steps on CPU (measured), and on GPUs
    teacher = EMATeacher(seg.unet, alpha_max=cfg.ema_alpha, warmup=cfg.ema_warmup)
    trainable = _Trainable(seg)
    groups = [{"params": list(seg.unet.parameters()), "lr": cfg.lr, "base_lr": cfg.lr}]
    if seg.textmask is not None and cfg.textmask_lr > 0:
        groups.append({"params": list(seg.textmask.parameters()), "lr": cfg.textmask_lr, "base_lr": cfg.textmask_lr})
    elif seg.textmask is not None:  # kept as it is: no gradients, no optimizer state
        seg.textmask.requires_grad_(False)
    opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(labeled) / cfg.labeled_batch)
    planned = steps_per_epoch * cfg.epochs
    total = planned if max_steps is None else min(planned, max_steps)
    step, best, spent, clock = 0, -1.0, 0.0, CLOCKS[cfg.budget_clock]
    if resuming:
        state, opt_state, meta = load_resume(resume_path)
        trainable.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("student.")})
        teacher.module.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("teacher.")})
        opt.load_state_dict(opt_state)
        step, best, spent = int(meta["step"]), float(meta["best"]), float(meta.get("train_s", 0.0))
    if cfg.time_budget_s and spent >= cfg.time_budget_s:
        total = step  # a resumed run whose budget was already spent: nothing left to do
    ddp = trainable
    if world > 1:
        ddp = nn.parallel.DistributedDataParallel(trainable, device_ids=[dev.index] if dev.type == "cuda" else None)
    # flips only: the frozen embeddings of an image then take up to four values, which ``frozen`` computes once
    transform = PairTransform(hflip_p=cfg.hflip_p, vflip_p=cfg.vflip_p, rotate_deg=0.0, crop_scale=(1.0, 1.0), jitter=0.0,
                              noise_std=0.0)
    frozen = FrozenEmbeddings(seg)
    ds.preload(labeled + (unlabeled if cfg.unlabeled_batch else []))  # decode files before the clock starts
    yield StartEvent(total_steps=total, start_step=step, device=str(dev), n_samples=len(ds))
    t_start = time.perf_counter()
    # the model that is validated and written: the teacher, or the student when no unlabeled image trains it
    view = TextGuidedSegmenter(amvlm, seg_cfg, unet=teacher.module if unlabeled and cfg.unlabeled_batch else seg.unet,
                               textmask=seg.textmask)
    while step < total:
        seg.train()
        if cfg.freeze_bn:
            _freeze_batchnorm(seg)
        lab_ids, unl_ids = _batch_ids(labeled, unlabeled, cfg, step, steps_per_epoch)
        lab_ids, unl_ids = lab_ids[rank::world], unl_ids[rank::world]
        g = torch.Generator().manual_seed(cfg.seed * 7_919 + step * world + rank)
        t0, c0 = time.perf_counter(), clock()
        images, masks, texts, keys = _load(ds, lab_ids + unl_ids, transform, g, dev)
        progress = step / total
        if cfg.time_budget_s:
            progress = max(progress, spent / cfg.time_budget_s)
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * _lr_factor(step, steps_per_epoch, cfg, progress)
        with autocast(dev):
            losses = _losses(seg, ddp, teacher, frozen, images, masks, texts, keys, len(lab_ids), step,
                             steps_per_epoch, cfg, g)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        if world > 1:
            for b in [*trainable.buffers(), *teacher.module.buffers()]:
                dist.broadcast(b, 0)
        teacher.update(seg.unet, step)
        step += 1
        spent += clock() - c0
        if cfg.time_budget_s and _budget_spent(spent >= cfg.time_budget_s, world, dev):
            total = step  # the budget is spent: this step is the last one (validated and written below)
        yield StepEvent(step=step, total_steps=total, epoch=(step - 1) // steps_per_epoch + 1,
                        losses={k: float(v.detach()) for k, v in losses.items()}, lr=opt.param_groups[0]["lr"],
                        images_per_s=len(texts) * world / max(time.perf_counter() - t0, 1e-9))
        if step % steps_per_epoch and step != total:
            continue
        if rank == 0:
            best = yield from _end_of_epoch(view, val_ds, seg_cfg, cfg, out, step, best, spent, dev, trainable,
                                            teacher, opt, resume_path, model)
        if world > 1:
            dist.barrier()
    yield DoneEvent(steps=step, wall_s=time.perf_counter() - t_start, out=out,
                    state=_training_state(trainable, teacher))


def _budget_spent(local: bool, world: int, dev: torch.device) -> bool:
    """Rank 0's answer on every rank, so that all ranks stop at the same step."""
    if world == 1:
        return local
    flag = torch.tensor([1.0 if local else 0.0], device=dev)
    dist.broadcast(flag, 0)
    return bool(flag.item())


def _training_state(trainable: nn.Module, teacher: EMATeacher) -> dict:
    state = {f"student.{k}": v for k, v in trainable.state_dict().items()}
    state.update({f"teacher.{k}": v for k, v in teacher.module.state_dict().items()})
    return state


def _end_of_epoch(view, val_ds, seg_cfg, cfg, out, step, best, spent, dev, trainable, teacher, opt, resume_path,
                  amvlm_dir):
    """Validate the teacher, write the model folder (the best so far, or the last with ``cfg.keep="last"``) and the
    resume state (rank 0 only); returns the best validation Dice so far."""
    metric = float("nan")
    if val_ds is not None:
        res = evaluate(view, val_ds, mode="fused" if seg_cfg.use_text else "segmenter", device=dev)
        metric = res.mean_dice
        yield MetricsEvent(step=step, metrics={"val_dice": res.mean_dice, "val_miou": res.mean_iou,
                                               "train_s": spent})
    if val_ds is None or metric > best or cfg.keep == "last":
        best = max(metric, best) if val_ds is not None else best
        save_segmenter(view, out, metadata={"step": str(step), "val_dice": f"{metric:.4f}"}, amvlm_source=amvlm_dir)
        yield CheckpointEvent(step=step, path=out, kind="model")
    save_resume(resume_path, _training_state(trainable, teacher), opt, {"step": step, "best": best,
                                                                       "train_s": spent})
    yield CheckpointEvent(step=step, path=resume_path, kind="resume")
    return best
