"""Where the time of a cold prompt goes (new image: every encoder runs), to guide speed work.

Profiles ``Segmenter.predict`` on new real QaTa images (after warm-up prompts) three ways:
1. per model part: wall time inside each top-level module (U-Net, vision encoder, text encoder, heads,
   text-mask decoder), the rest being Python/NumPy glue (hashing, resizing, fusion, conversions);
2. torch.profiler: the top operators by self CPU time;
3. cProfile: the top Python functions by own time.

    .venv/bin/python benchmarks/profile_prompt.py [--prompts 10] [--top 25] [--warm]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_model, print_table, qata_items


def model_parts(seg) -> dict[str, object]:
    """The modules whose time is reported separately (children of the segmenter and of the AMVLM)."""
    parts = {f"amvlm.{n}": m for n, m in seg.amvlm.named_children()}
    parts["unet"] = seg.unet
    if seg.textmask is not None:
        parts.update({f"textmask.{n}": m for n, m in seg.textmask.named_children()})
    return parts


def time_parts(seg, calls) -> tuple[dict[str, float], float]:
    """Inclusive wall seconds per part (forward hooks) and the total, over ``calls`` (each a no-arg function)."""
    spent: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    handles = []
    for name, mod in model_parts(seg).items():
        handles.append(mod.register_forward_pre_hook(lambda m, a, n=name: started.__setitem__(n, time.perf_counter())))
        handles.append(mod.register_forward_hook(
            lambda m, a, o, n=name: spent.__setitem__(n, spent[n] + time.perf_counter() - started[n])))
    t0 = time.perf_counter()
    for call in calls:
        call()
    total = time.perf_counter() - t0
    for h in handles:
        h.remove()
    return dict(spent), total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=10, help="cold prompts profiled by each method")
    p.add_argument("--top", type=int, default=25, help="rows of the operator and function tables")
    p.add_argument("--warm", action="store_true", help="profile warm prompts (same image, new prompt) instead")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    args = p.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from napari_amvlm.inference import Segmenter
    from napari_amvlm.io import read_image
    from napari_amvlm.model.hub import load_segmenter

    with benchmark_model(args.model) as (model, weights):
        seg = Segmenter(load_segmenter(model, "cpu"), "cpu")
    n = args.prompts
    items, _ = qata_items("valid", 3 * n + 2, seed=2)
    pairs = [(read_image(it.image), it.text) for it in items]
    for image, text in pairs[:2]:  # warm-up
        seg.predict(image, text)
    if args.warm:
        same = pairs[0][0]
        batches = [[(lambda t=t: seg.predict(same, t)) for _, t in pairs[2 + k * n: 2 + (k + 1) * n]]
                   for k in range(3)]
    else:
        batches = [[(lambda i=i, t=t: seg.predict(i, t)) for i, t in pairs[2 + k * n: 2 + (k + 1) * n]]
                   for k in range(3)]
    kind = "warm" if args.warm else "cold"
    print(f"model: {model} (segmenter weights: {weights}); {kind} prompts, {n} per method; "
          f"torch threads {torch.get_num_threads()}\n")

    spent, total = time_parts(seg.seg, batches[0])
    rows = [(name, f"{1000 * s / n:.1f}", f"{100 * s / total:.0f}%") for name, s in
            sorted(spent.items(), key=lambda kv: -kv[1]) if s > 0]
    rows.append(("(outside these modules: glue)", f"{1000 * (total - sum(spent.values())) / n:.1f}",
                 f"{100 * (total - sum(spent.values())) / total:.0f}%"))
    rows.append(("total per prompt", f"{1000 * total / n:.1f}", "100%"))
    print(f"1. {kind} prompt time per model part (inclusive wall time; hooks add a little)")
    print_table(rows, ("part", "ms / prompt", "share"))

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for call in batches[1]:
            call()
    print(f"\n2. torch.profiler: top {args.top} operators by self CPU time ({n} prompts)")
    print(prof.key_averages(group_by_input_shape=False).table(sort_by="self_cpu_time_total", row_limit=args.top))

    pr = cProfile.Profile()
    pr.enable()
    for call in batches[2]:
        call()
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(args.top)
    print(f"3. cProfile: top {args.top} Python functions by own time ({n} prompts)")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
