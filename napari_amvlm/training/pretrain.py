"""Stage 1: AMVLM pre-training on image-text pairs, as a generator of typed events.

    for ev in pretrain(["data/qata/train"], "models/mine", AMVLMConfig(), PretrainConfig(epochs=1)):
        print(format_event(ev))

Writes ``config.json`` + ``model.safetensors`` (at every epoch end and at the end) and a resumable
``resume.safetensors`` every ``checkpoint_every`` steps; every write is atomic. The data order and the
augmentations are a function of (seed, step), so a resumed run continues exactly where the killed one was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ..config import AMVLMConfig, PretrainConfig
from ..data.dataset import ImageTextDataset, collate
from ..data.transforms import PairTransform, photometric_view
from ..device import autocast, resolve_device
from ..losses.position_negatives import position_rewrites
from ..losses.total import amvlm_loss
from ..model.amvlm import AMVLM
from ..model.hub import check_state, read_segmenter, save_model, trained_state
from ..model.outputs import AMVLMEmbeddings
from ..model.vision import UNetStem, load_unet_stem
from .checkpoint import RESUME_NAME, load_resume, save_resume
from .events import CheckpointEvent, DoneEvent, StartEvent, StepEvent
from .schedule import warmup_cosine


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The batches of one epoch: a seeded permutation, last incomplete batch dropped (contrastive losses need B>1)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    size = min(batch_size, n)
    return [perm[i : i + size] for i in range(0, n - size + 1, size)]


def _load_batch(ds: ImageTextDataset, idx: torch.Tensor, transform: PairTransform, g: torch.Generator) -> dict:
    items = []
    for i in idx.tolist():
        item = ds[i]
        item["image"], item["mask"], item["text"] = transform(item["image"], item["mask"], item["text"], generator=g)
        items.append(item)
    return collate(items)


def _optimizer(model: AMVLM, cfg: PretrainConfig) -> torch.optim.Optimizer:
    text, rest = model.trainable_parameters()
    groups = [{"params": rest, "lr": cfg.lr, "base_lr": cfg.lr}]
    if text:
        groups.append({"params": text, "lr": cfg.text_lr, "base_lr": cfg.text_lr})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def embed_with_negatives(model: AMVLM, images: torch.Tensor, texts: list[str], with_dist: bool,
                         hard_negatives: bool) -> tuple[AMVLMEmbeddings, tuple[torch.Tensor, torch.Tensor] | None]:
    """The batch's embeddings and, with ``hard_negatives``, (global embeddings of the side/zone rewrites of its
    sentences, the image index each belongs to). The rewrites go through the sentences' own text pass, so that
    they share its BatchNorm statistics: in a pass of their own, the loss learnt to tell the rewrites from the
    sentences by those statistics and never by their words (100 % of training pairs right in training mode,
    55 % with shared statistics, for the same weights)."""
    if not hard_negatives:
        return model(images, texts, with_dist=with_dist), None
    rewrites, owner = position_rewrites(texts)
    emb = model(images, texts, with_dist=with_dist, extra_texts=rewrites)
    return emb, (emb.extra_text_global, torch.tensor(owner, dtype=torch.long, device=images.device))


def _train_mode(model: AMVLM, cfg: PretrainConfig) -> None:
    model.train()
    if cfg.freeze_stem:
        fixed_stem(model).eval()  # a fixed stem keeps its BatchNorm statistics too


def fixed_stem(model: AMVLM) -> torch.nn.Module:
    """What ``freeze_stem`` keeps fixed: a U-Net stem's encoder levels (its 1x1 token projection is new and
    learns), or the whole stem of the other towers."""
    stem = model.vision.stem
    return stem.encoders if isinstance(stem, UNetStem) else stem


def init_stem_from(model: AMVLM, folder: str | Path) -> int:
    """Load the U-Net encoder of the segmenter in ``folder`` (its EMA teacher) into the hybrid tower's stem."""
    _, state = read_segmenter(folder)
    unet = {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")}
    return load_unet_stem(model.vision, unet, str(folder))


def pretrain(data: list[str | Path] | str | Path, out: str | Path, model_cfg: AMVLMConfig | None = None,
             train_cfg: PretrainConfig | None = None, device: str = "auto", resume: bool = False,
             max_steps: int | None = None, limit: int | None = None,
             init_stem: str | Path | None = None) -> Iterator[object]:
    """Pre-train AMVLM; ``max_steps`` stops early (a short run), ``limit`` uses only the first N pairs,
    ``init_stem`` is a model folder whose segmenter U-Net initialises a hybrid tower's stem."""
    model_cfg = model_cfg or AMVLMConfig()
    train_cfg = train_cfg or PretrainConfig()
    out = Path(out)
    dev = resolve_device(device)
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    ds = ImageTextDataset(data, size=model_cfg.vision.image_size)
    n = len(ds) if limit is None else min(limit, len(ds))
    if n < 2:
        raise ValueError(f"pre-training needs at least 2 image-text pairs, found {n}")
    torch.manual_seed(train_cfg.seed)
    model = AMVLM(model_cfg)
    if init_stem is not None:
        init_stem_from(model, init_stem)
    if train_cfg.freeze_stem:
        fixed_stem(model).requires_grad_(False)
    model = model.to(dev)
    opt = _optimizer(model, train_cfg)
    steps_per_epoch = len(_batches(n, train_cfg.batch_size, train_cfg.seed, 0))
    planned = steps_per_epoch * train_cfg.epochs  # the lr schedule spans the planned run
    total = planned if max_steps is None else min(planned, max_steps)
    step = 0
    resume_path = out / RESUME_NAME
    if resume and resume_path.is_file():
        state, opt_state, meta = load_resume(resume_path)
        check_state(model, state, str(resume_path))
        model.load_state_dict(state, strict=False)
        opt.load_state_dict(opt_state)
        step = int(meta["step"])
    transform = PairTransform(hflip_p=train_cfg.hflip_p, vflip_p=0.0)
    yield StartEvent(total_steps=total, start_step=step, device=str(dev), n_samples=n)
    t_start = time.perf_counter()
    _train_mode(model, train_cfg)
    while step < total:
        epoch, pos = divmod(step, steps_per_epoch)
        idx = _batches(n, train_cfg.batch_size, train_cfg.seed, epoch)[pos]
        g = torch.Generator().manual_seed(train_cfg.seed * 7_919 + step)
        t0 = time.perf_counter()
        batch = _load_batch(ds, idx, transform, g)
        images = batch["image"].to(dev, non_blocking=True)
        texts = batch["text"]
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * warmup_cosine(step, planned, min(train_cfg.warmup_steps, planned // 4))
        torch.manual_seed(train_cfg.seed * 7_919 + step)  # dropout too is a function of (seed, step)
        with autocast(dev):
            emb, negatives = embed_with_negatives(model, images, texts, not train_cfg.global_only,
                                                  bool(model_cfg.loss.w_pos))
            aug = None
            if not train_cfg.global_only:
                view = photometric_view(images, generator=g, strength=model_cfg.loss.icl_strength)
                aug = model(view, texts, with_dist=False)
            losses = amvlm_loss(model, model_cfg.loss, emb, texts, aug, global_only=train_cfg.global_only,
                                negatives=negatives)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for grp in opt.param_groups for p in grp["params"]], 5.0)
        opt.step()
        step += 1
        dt = time.perf_counter() - t0
        yield StepEvent(step=step, total_steps=total, epoch=epoch + 1,
                        losses={k: float(v.detach()) for k, v in losses.items()},
                        lr=opt.param_groups[0]["lr"], images_per_s=len(texts) / max(dt, 1e-9))
        epoch_end = step % steps_per_epoch == 0 or step == total
        if step % train_cfg.checkpoint_every == 0 or epoch_end:
            save_resume(resume_path, trained_state(model), opt, {"step": step, "epoch": epoch})
            yield CheckpointEvent(step=step, path=resume_path, kind="resume")
        if epoch_end:
            model.eval()
            save_model(model, out, {"step": str(step), "epochs": str(train_cfg.epochs)})
            _train_mode(model, train_cfg)
            yield CheckpointEvent(step=step, path=out, kind="model")
    yield DoneEvent(steps=step, wall_s=time.perf_counter() - t_start, out=out)
