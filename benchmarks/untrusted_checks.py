"""What the checks on projects, model folders and images from someone else cost (SECURITY.md lists them).

Builds a project of ``--images`` images (each with a human label and a prompt) in a temporary folder and prints a
table of median times: the manifest's schema check, opening the project (which checks every array's metadata and
chunk headers), one array's check, the header check of an image file, and the checks of a model folder's configs
next to loading the whole model; then how fast a crafted folder is refused.

    .venv/bin/python benchmarks/untrusted_checks.py [--images 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from _common import REPO, busy_warning, machine_info, print_table, shipped_model_dir, stats, timed, write_json


def _project(root: Path, n: int):
    from napari_amvlm.project import Project

    p = Project.create(root)
    rng = np.random.default_rng(0)
    with p.transaction():
        for k in range(n):
            (image_id,) = p.add_image(rng.integers(0, 255, (224, 224), dtype=np.uint8), name=f"x{k}")
            p.add_prompt(image_id, "unilateral pulmonary infection, lower left lung.", author="bench")
            p.mark_corrected(image_id, (rng.random((224, 224)) > 0.5).astype(np.uint8), author="bench")
    return p


def _row(what: str, seconds: list[float], per: int = 1) -> tuple:
    s = stats([1000 * t / per for t in seconds], 3)
    return what, s["median"], s["min"], s["max"], s["n"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000, help="images in the generated project")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from napari_amvlm.io.limits import check_declared_size
    from napari_amvlm.model.hub import ModelLoadError, load_segmenter, read_config, read_segmenter
    from napari_amvlm.project import Project
    from napari_amvlm.project.arrays import check_array
    from napari_amvlm.project.schema import check_manifest

    info = machine_info()
    rows = []
    with tempfile.TemporaryDirectory(prefix="amvlm-bench-") as tmp:
        p = _project(Path(tmp) / "p.amvlm", args.images)
        manifest = json.loads((p.root / "amvlm-project.json").read_text())
        rows.append(_row(f"schema check of the manifest ({args.images} images)", timed(lambda: check_manifest(manifest), 5, 1)))
        rows.append(_row(f"Project.open, every array checked ({2 * args.images} arrays)",
                         timed(lambda: Project.open(p.root, mode="r"), 5, 1)))
        arrays = sorted((p.root / "arrays").iterdir())[:200]
        rows.append(_row("check of one array (metadata + chunk headers)",
                         timed(lambda: [check_array(a) for a in arrays], 5, 1), per=len(arrays)))
        png = min((REPO / "sample_data" / "qata" / "images").glob("*.png"))
        tif = Path(tmp) / "stack.tif"
        import tifffile

        tifffile.imwrite(tif, np.zeros((20, 512, 512), np.uint16))
        rows.append(_row("header check of a PNG", timed(lambda: check_declared_size(png), 20, 2)))
        rows.append(_row("header check of a 20-page TIFF", timed(lambda: check_declared_size(tif), 20, 2)))
        model = shipped_model_dir()
        rows.append(_row("model configs read and checked (shipped model)",
                         timed(lambda: (read_config(model), read_segmenter(model)), 5, 1)))
        rows.append(_row("whole model loaded (for comparison)", timed(lambda: load_segmenter(model), 3, 1)))
        crafted = Path(tmp) / "crafted"
        shutil.copytree(model, crafted)
        cfg = json.loads((crafted / "config.json").read_text())
        cfg["model"]["vision"]["depth"] = 1_000_000
        (crafted / "config.json").write_text(json.dumps(cfg))

        def refuse() -> None:
            try:
                load_segmenter(crafted)
            except ModelLoadError:
                return
            raise AssertionError("the crafted model loaded")

        rows.append(_row("crafted model (depth 1000000) refused", timed(refuse, 5, 1)))
    header = ("what", "median ms", "min ms", "max ms", "n")
    print_table(rows, header)
    warning = busy_warning(info)
    if warning:
        print(f"warning: {warning}")
    if args.json:
        write_json(args.json, {"machine": info, "images": args.images, "rows": [dict(zip(header, r)) for r in rows]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
