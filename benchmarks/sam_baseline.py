"""Reference: SAM ViT-B image embedding of one 1024x1024 image (transformers ``SamModel(SamConfig())``).

Random weights (nothing is downloaded): the architecture, and so the compute, is the one of the ViT-B weights
users download; only the time is measured. Built and run under ``torch.inference_mode``, with warm-up runs.

    .venv/bin/python benchmarks/sam_baseline.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, stats, timed, write_json


def measure(n: int = 5, warmup: int = 2, device: str = "cpu") -> dict:
    """Seconds per image embedding (median over ``n`` runs after ``warmup`` runs)."""
    import torch
    from transformers import SamConfig, SamModel

    torch.manual_seed(0)
    cfg = SamConfig()
    with torch.inference_mode():
        model = SamModel(cfg).to(device).eval()
        side = cfg.vision_config.image_size
        pixels = torch.rand(1, 3, side, side, device=device)
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
        times = timed(lambda: model.get_image_embeddings(pixels), n, warmup, sync)
    v = cfg.vision_config
    return {"sam_vitb_embed_s": stats(times), "device": str(device), "input": [1, 3, side, side],
            "vision_encoder": {"hidden_size": v.hidden_size, "layers": v.num_hidden_layers,
                               "heads": v.num_attention_heads, "patch_size": v.patch_size,
                               "params_m": round(sum(p.numel() for p in model.vision_encoder.parameters()) / 1e6, 1)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one run after one warm-up (checks that it runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    res = measure(*((1, 1) if args.quick else (5, 2)), device=args.device)
    s = res["sam_vitb_embed_s"]
    print_table([("SAM ViT-B embedding, 1024²", s["median"], s["min"], s["max"], s["n"])],
                ("figure", "median s", "min s", "max s", "n"))
    print(f"vision encoder: {res['vision_encoder']}")
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
