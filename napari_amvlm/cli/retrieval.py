"""``amvlm retrieval``: image -> sentence retrieval accuracy of a pre-trained model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrieval", help="rank candidate sentences for each image (top-1 / top-5 accuracy)",
                       description="Image -> sentence retrieval: rank the distinct sentences of REFERENCE for each "
                                   "image of DATA by the similarity of their global embeddings, and print how often "
                                   "the image's own sentence is first (top-1) or among the first five (top-5).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="DIR", help="model folder (config.json + model.safetensors)")
    src.add_argument("--untrained", action="store_true", help="a freshly initialised model (seed 0), as a floor")
    p.add_argument("--data", required=True, metavar="DIR", help="images to evaluate (image,mask,text CSV)")
    p.add_argument("--reference", required=True, metavar="DIR", help="folder whose distinct sentences are ranked")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda | mps (default %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..config import AMVLMConfig
    from ..device import resolve_device
    from ..model.amvlm import AMVLM
    from ..model.hub import load_model
    from ..retrieval import retrieval_accuracy

    device = resolve_device(args.device)
    if args.untrained:
        torch.manual_seed(0)
        model = AMVLM(AMVLMConfig())
    else:
        model = load_model(args.model)
    res = retrieval_accuracy(model, args.data, args.reference, device=device)
    print(res.line())
    if args.json:
        Path(args.json).write_text(json.dumps(res.__dict__, indent=2) + "\n")
    return 0
