"""Prompt latency of the inference engine (``napari_amvlm.inference.Segmenter.predict``), on real QaTa images.

- cold: a new image each time: content hash, resize, U-Net, vision encoder, text-mask decoder, text encoder,
  heads, fusion, resize back to the image (the whole path the widget runs; the image-embedding cache misses);
- warm: the same image with a new prompt each time (the cache hits: text encoder + dot product + fusion).

And the same two figures for a 4000 x 4000 H&E field with the bundled MoNuSeg model, whose field is 1000 pixels:
a mosaic of 4 x 4 MoNuSeg tiles (``../shared/data/monuseg``, else the shipped sample tiles repeated), segmented by
overlapping windows at the model's scale and blended (cold: every window through the model; warm: a new prompt,
every window's text mask from the cache).

    .venv/bin/python benchmarks/prompt_latency.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_model, print_table, qata_items, stats, timed, write_json

PROMPTS = [  # sentences of the QaTa grammar, used as "new prompts" on a cached image
    "unilateral pulmonary infection, one infected area, lower left lung.",
    "unilateral pulmonary infection, one infected area, lower right lung.",
    "bilateral pulmonary infection, two infected areas, lower left lung and lower right lung.",
    "bilateral pulmonary infection, four infected areas, upper middle lower left lung and lower right lung.",
    "unilateral pulmonary infection, two infected areas, middle lower left lung.",
    "unilateral pulmonary infection, three infected areas, upper middle lower right lung.",
    "bilateral pulmonary infection, three infected areas, lower left lung and middle lower right lung.",
    ("bilateral pulmonary infection, six infected areas, upper middle lower left lung and upper middle lower "
     "right lung."),
]


def measure(model_dir: Path, n_cold: int = 30, n_warm: int = 50, warmup: int = 2, device: str = "cpu") -> dict:
    """Cold and warm prompt latency (seconds per prompt); medians over ``n_cold`` / ``n_warm`` prompts."""
    from napari_amvlm.inference import Segmenter
    from napari_amvlm.io import read_image
    from napari_amvlm.model.hub import load_segmenter

    items, source = qata_items("valid", n_cold + warmup + 1, seed=1)
    images = [read_image(it.image) for it in items]  # as the widget passes them: the raw 2D array
    seg = Segmenter(load_segmenter(model_dir, device), device)
    sync = _sync(device)
    queue = list(zip(images, [it.text for it in items]))

    def cold() -> None:
        image, text = queue.pop()
        seg.predict(image, text)

    misses = seg.cache_misses
    cold_s = timed(cold, n_cold, warmup, sync)
    assert seg.cache_misses - misses == n_cold + warmup, "a cold prompt hit the cache: images repeat"
    same = queue.pop()[0]
    seg.predict(same, PROMPTS[0])
    k = iter(range(10**9))
    hits = seg.cache_hits
    warm_s = timed(lambda: seg.predict(same, PROMPTS[next(k) % len(PROMPTS)]), n_warm, warmup, sync)
    assert seg.cache_hits - hits == n_warm + warmup, "a warm prompt missed the cache"
    return {"cold_s": stats(cold_s), "warm_s": stats(warm_s), "device": str(device), "images": source,
            "image_shape": list(images[0].shape), "model_size": seg.size}


FIELD_SIDE = 4000  # the large field's side in pixels
FIELD_PROMPTS = ["The nuclei are evenly distributed.", "The nuclei density in the upper right is high.",
                 "The nuclei density in the left is high."]


def _he_tiles() -> tuple[list, str]:
    """Real H&E tiles: MoNuSeg's training tiles when the shared data is there, else the shipped samples."""
    from _common import REPO

    from napari_amvlm.data.dataset import read_records
    from napari_amvlm.io import read_image

    folder = REPO.parent / "shared" / "data" / "monuseg" / "Train_Folder"
    if not folder.is_dir():
        folder = REPO / "sample_data" / "monuseg"
    return [read_image(r.image)[..., :3] for r in sorted(read_records(folder), key=lambda r: r.name)], str(folder)


def _field(tiles: list, shift: int):
    """A FIELD_SIDE x FIELD_SIDE RGB mosaic of the tiles, starting at tile ``shift`` (a new image per shift)."""
    import numpy as np

    side = tiles[0].shape[0]
    n = -(-FIELD_SIDE // side)
    rows = [np.concatenate([tiles[(shift + r * n + c) % len(tiles)][:side, :side] for c in range(n)], axis=1)
            for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:FIELD_SIDE, :FIELD_SIDE])


def measure_field(n_cold: int = 3, n_warm: int = 5, device: str = "cpu") -> dict:
    """Cold and warm prompt latency (seconds) on a FIELD_SIDE-pixel field with the bundled MoNuSeg model."""
    from napari_amvlm.inference import Segmenter
    from napari_amvlm.resources import models_dir

    tiles, source = _he_tiles()
    seg = Segmenter.from_folder(models_dir() / "amvlm-monuseg", device)
    fields = iter([_field(tiles, k) for k in range(n_cold + 1)])
    windows = []
    cold_s = timed(lambda: windows.append(seg.predict(next(fields), FIELD_PROMPTS[0]).windows), n_cold, 0,
                   _sync(device))
    same = _field(tiles, n_cold)
    seg.predict(same, FIELD_PROMPTS[0])
    k = iter(range(10**9))
    hits = seg.cache_hits
    warm_s = timed(lambda: seg.predict(same, FIELD_PROMPTS[next(k) % len(FIELD_PROMPTS)]), n_warm, 0, _sync(device))
    assert seg.cache_hits - hits == n_warm, "a warm prompt on the field missed the cache"
    return {"field_cold_s": stats(cold_s), "field_warm_s": stats(warm_s), "field_shape": [FIELD_SIDE, FIELD_SIDE, 3],
            "field_model": "amvlm-monuseg", "field_windows": windows[0], "field_tiles": source}


def _sync(device: str):
    import torch

    return torch.cuda.synchronize if str(device).startswith("cuda") else None


def rows(res: dict) -> list[tuple]:
    names = [("prompt on a new image (cold)", "cold_s"), ("new prompt, same image (warm)", "warm_s")]
    if "field_cold_s" in res:
        side, n = res["field_shape"][0], res["field_windows"]
        names += [(f"{side}x{side} field, new image ({n} windows, cold)", "field_cold_s"),
                  (f"{side}x{side} field, new prompt (warm)", "field_warm_s")]
    return [(name, res[k]["median"], res[k]["min"], res[k]["max"], res[k]["n"]) for name, k in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few prompts only (checks that it runs)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    n = (3, 5, 1) if args.quick else (30, 50, 2)
    with benchmark_model(args.model) as (model, weights):
        res = measure(model, *n, device=args.device) | {"model": str(model), "segmenter_weights": weights}
    res |= measure_field(*((1, 2) if args.quick else (3, 5)), device=args.device)
    print_table(rows(res), ("figure", "median s", "min s", "max s", "n"))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
