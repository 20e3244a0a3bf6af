"""``amvlm pretrain``: stage-1 AMVLM pre-training from one or more image-text folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import AMVLMConfig, PretrainConfig, from_dict, save_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train the vision-language model on image-text pairs",
                       description="Pre-train AMVLM (global + CSS + ICL losses) on folders holding an "
                                   "image,mask,text CSV. Writes OUT/config.json and OUT/model.safetensors.")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders with an image,mask,text CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write (e.g. models/NAME)")
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs,
                   help="passes over the data (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size,
                   help="image-text pairs per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=PretrainConfig.lr,
                   help="AdamW learning rate of the vision encoder and heads (default %(default)s; the "
                        f"fine-tuned text layers keep their own, {PretrainConfig.text_lr:g})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.safetensors if present")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (short runs)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    p.add_argument("--seed", type=int, default=PretrainConfig.seed,
                   help="seeds initialisation, shuffling and augmentation (default %(default)s)")
    p.add_argument("--global-only", action="store_true", help="ablation: train the global InfoNCE term only")
    p.add_argument("--model-config", metavar="JSON", help="AMVLMConfig as JSON (sizes, loss weights)")
    p.add_argument("--init-stem", metavar="DIR", help="model folder whose trained U-Net encoder initialises the "
                   "vision stem (needs a model config with vision.unet_stem true and the same U-Net base)")
    p.add_argument("--freeze-stem", action="store_true", help="keep the vision stem fixed while pre-training")
    p.add_argument("--checkpoint-every", type=int, default=PretrainConfig.checkpoint_every,
                   help="steps between resumable checkpoints")
    p.add_argument("--log-every", type=int, default=10, help="print one progress line every N steps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.dataset import check_files
    from ..training.events import log_line
    from ..training.pretrain import pretrain

    model_cfg = AMVLMConfig()
    if args.model_config:
        model_cfg = from_dict(AMVLMConfig, json.loads(Path(args.model_config).read_text()))
    train_cfg = PretrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               checkpoint_every=args.checkpoint_every,
                               global_only=args.global_only, freeze_stem=args.freeze_stem)
    out = Path(args.out)
    check_files(args.data, limit=args.limit)  # a bad file stops the command before it writes anything
    out.mkdir(parents=True, exist_ok=True)
    save_json(train_cfg, out / "pretrain_config.json")
    for ev in pretrain(args.data, out, model_cfg, train_cfg, device=args.device, resume=args.resume,
                       max_steps=args.max_steps, limit=args.limit, init_stem=args.init_stem):
        line = log_line(ev, args.log_every)
        if line:
            print(line, flush=True)
    return 0

