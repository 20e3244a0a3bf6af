"""A retraining round's data: the annotation project exported as an ``image,mask,text`` training folder.

Corrected images are labeled with their human label, every other image is unlabeled; each image's text is its
latest prompt, with left/right rewritten into the image's sides (the models' convention) when it was written in the
patient's. The training process reads this copy and never opens the project itself.
"""

from __future__ import annotations

import csv
import functools
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._cancel import check
from ..inference.prompts import to_model_sides
from ..project import Project, Status
from ..project.names import check_file_name


@dataclass
class TrainingSet:
    """An exported training folder and which project images it holds."""

    folder: Path  # holds text.csv, images/, masks/
    labeled: list[str]  # image ids with a human label (file stems in the folder)
    unlabeled: list[str]  # image ids used as unlabeled data
    skipped: list[str] = field(default_factory=list)  # images without any prompt (no text to train with)


def _latest_prompt(project: Project, image_id: str) -> str | None:
    prompts = [to_model_sides(p.text, p.sides) for p in project.prompts(image_id) if p.text.strip()]
    return prompts[-1] if prompts else None


@functools.cache  # once per process
def warm_up_export() -> None:
    """Load the image writers the export uses (their first use imports plugins for ~40 ms while holding the
    GIL, which would stall the viewer during the first round's export). Call it on a worker thread early."""
    from skimage import io as skio

    with tempfile.TemporaryDirectory(prefix="amvlm-warm-") as tmp:
        for name in ("x.tif", "x.png"):
            skio.imsave(str(Path(tmp) / name), np.zeros((2, 2), np.uint8), check_contrast=False)


def prepare_training_folder(project: Project, folder: str | os.PathLike, default_prompt: str | None = None,
                            stop: threading.Event | None = None,
                            exclude: Sequence[str] = ()) -> TrainingSet:  # fmt: skip
    """Export ``project`` as a training folder. Images with no prompt get ``default_prompt`` (written in the image's
    sides; or are skipped). Images in ``exclude`` (the round's held-back corrections) are left out altogether.

    Raises ValueError when no image is corrected (Mean Teacher needs at least one labeled image), and
    :class:`~napari_amvlm._cancel.Cancelled` between images once ``stop`` is set.
    """
    from skimage import io as skio

    project.refresh()
    corrected = set(project.image_ids(Status.CORRECTED))
    if not corrected:
        raise ValueError("no corrected image yet: correct at least one mask and press 'Mark corrected' first")
    ids = project.image_ids()
    for image_id in ids:  # each names files below and is a word of the training process's command line
        check_file_name(image_id, "the image id")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    out = TrainingSet(folder, [], [])
    rows = []
    left_out = set(exclude)
    for image_id in ids:
        check(stop)
        if image_id in left_out:
            continue
        text = _latest_prompt(project, image_id) or (default_prompt or "").strip()
        if not text:
            out.skipped.append(image_id)
            continue
        image = np.asarray(project.read_image(image_id)[...])
        skio.imsave(str(folder / "images" / f"{image_id}.tif"), image, check_contrast=False)
        mask_name = ""
        if image_id in corrected:
            mask = np.asarray(project.read_mask(image_id, "human")[...])
            mask_name = f"masks/{image_id}.png"
            skio.imsave(str(folder / mask_name), ((mask != 0) * 255).astype(np.uint8), check_contrast=False)
        (out.labeled if mask_name else out.unlabeled).append(image_id)
        rows.append((f"images/{image_id}.tif", mask_name, text))
    if not out.labeled:
        raise ValueError("the corrected images have no prompt: type a description for them first")
    with open(folder / "text.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "mask", "text"])
        writer.writerows(rows)
    return out
