"""What the widget's worker thread runs: load a model, segment planes, score images by uncertainty, store
human labels.

Plain functions over the engine (no Qt), so they can run on any thread and be tested directly. The long ones
take the widget's ``stop`` event and end with :class:`~napari_amvlm._cancel.Cancelled` between planes once it is
set (the viewer or the project is closing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._cancel import check
from ..device import resolve_device
from ..inference import Segmenter
from ..inference.postprocess import Cleanup
from ..inference.prompts import read_vocabulary
from ..io.image import ImageError, as_image
from ..model.hub import SEG_WEIGHTS_NAME
from ..project import Project
from ..project.files import sha256_file
from ..training.round_data import warm_up_export
from ._layers import PlanePrediction, Planes, SegmentResult

Report = Callable[[int], None]  # steps done so far (called from the worker thread)
LOAD_STEPS = 2  # model loaded, then ready (warm-up, identity)


@dataclass
class LoadedModel:
    """A model in use: where it came from, its identity in projects, and the inference object."""

    folder: Path
    segmenter: Segmenter
    sha: str  # sha256 of segmenter.safetensors: the model's id in a project
    device: str
    round: int | None = None  # the project round that trained it, None for a model loaded from a folder

    @property
    def weights(self) -> Path:
        return self.folder / SEG_WEIGHTS_NAME

    def describe(self) -> str:
        origin = f"round {self.round}" if self.round else self.folder.name
        return f"{origin} on {self.device} (model {self.sha[:10]})"


def load(folder: str | Path, device: str, round: int | None = None, report: Report | None = None) -> LoadedModel:
    """Load a model folder for inference; raises ModelLoadError (a ValueError) for anything that is not one.
    ``report`` hears of each of the :data:`LOAD_STEPS` steps as it ends."""
    dev = resolve_device(device)
    folder = Path(folder)
    segmenter = Segmenter.from_folder(folder, dev)
    report and report(1)
    warm_up_export()  # (here, on the loading thread, not during the first round)
    model = LoadedModel(folder, segmenter, sha256_file(folder / SEG_WEIGHTS_NAME), str(dev), round)
    report and report(2)
    return model


def from_round(result, device: str) -> LoadedModel:
    """The model of a finished retraining round (already loaded by RetrainJob.finalize)."""
    dev = resolve_device(device)
    segmenter = Segmenter(result.segmenter, dev, vocabulary=read_vocabulary(result.folder))
    return LoadedModel(result.folder, segmenter, result.model_sha, str(dev), result.index)


def _stored(project: Project, planes: Planes, k: int, pixels: np.ndarray | None = None) -> str:
    """The project id of plane ``k``, adding the plane to the project when it lacks it (``pixels``: the plane,
    already read)."""
    if planes.known[k]:
        return planes.known[k]
    pixels = planes.read(k) if pixels is None else pixels
    return project.add_image(pixels, name=planes.names[k], rgb=planes.rgb)[0]


def predict_planes(model: LoadedModel, project: Project, planes: Planes, image: str, prompt: str,
                   sides: str = "image", cleanup: Cleanup | None = None, report: Report | None = None,
                   stop: threading.Event | None = None) -> SegmentResult:  # fmt: skip
    """Segment each plane for ``prompt`` (left/right in the ``sides`` convention; masks cleaned up with
    ``cleanup``): add the planes the project lacks, store each mask as the image's prediction, and return the
    result. Lazy planes (dask, zarr) are read here, on the worker thread. A plane the model cannot segment (too
    small, NaN, constant) raises ImageError when it is the only one; in a stack it is skipped and named in the
    result's notices. ``report`` hears of each plane done."""
    t0 = time.perf_counter()
    sides = "patient" if planes.orientation is not None else sides  # the file says how the patient lies
    prepared = model.segmenter.prepare(prompt, sides)  # a prompt it cannot read fails before any work
    hits = model.segmenter.cache_hits
    project.add_model(model.weights, name=model.folder.name)
    out, skipped, note = [], [], ""
    for k, index in enumerate(planes.indices):
        check(stop)
        plane = planes.read(k)
        try:
            image = as_image(plane, spacing=planes.spacing, orientation=planes.orientation, source=planes.names[k])
            pred = model.segmenter.predict(image, prompt, sides=sides, cleanup=cleanup)
            note = pred.sides_note
        except ImageError as err:
            if len(planes.indices) == 1:
                raise
            skipped.append(f"{planes.names[k]}: {err}")
        else:
            image_id = _stored(project, planes, k, plane)
            project.write_prediction(image_id, pred.mask, model=model.sha, prompt=prompt, round=model.round,
                                     sides=sides)
            out.append(PlanePrediction(index, image_id, pred.mask, pred.uncertainty))
        report and report(k + 1)
    if not out:
        raise ImageError(f"no slice could be segmented ({skipped[0]}{' …' if len(skipped) > 1 else ''})")
    notices = list(prepared.notices)
    if planes.from_file:  # what the file said (or did not say) about its sides
        notices.append(note + ("" if planes.orientation else " (the file does not say how the image is oriented)"))
    if skipped:
        notices.append(f"skipped {len(skipped)} of {len(planes.indices)} slices: " + "; ".join(skipped[:3])
                       + (" …" if len(skipped) > 3 else ""))
    provenance = {"model": model.sha, "model_folder": str(model.folder), "round": model.round,
                  "device": model.device, "mode": "fused", "sides": sides, "model_prompt": prepared.text,
                  "sides_note": note,
                  "postprocess": cleanup is not None, "seconds": round(time.perf_counter() - t0, 3)}
    return SegmentResult(image, prompt, out, provenance, model.segmenter.cache_hits - hits, notices)


def score_images(model: LoadedModel, project: Project, ids: list[str], default_prompt: str,
                 sides: str = "image", stop: threading.Event | None = None) -> dict[str, float]:  # fmt: skip
    """Mean uncertainty of each image under its latest prompt (``default_prompt``, written in ``sides``, when it
    has none). Images the model cannot segment meaningfully (ImageError) get no score."""
    scores = {}
    for image_id in ids:
        check(stop)
        prompts = project.prompts(image_id)
        prompt, prompt_sides = (prompts[-1].text, prompts[-1].sides) if prompts else (default_prompt, sides)
        if not prompt.strip():
            continue
        try:
            pred = model.segmenter.predict(np.asarray(project.read_image(image_id)[...]), prompt, sides=prompt_sides)
        except ImageError:
            continue
        scores[image_id] = float(pred.uncertainty.mean())
    return scores


def mark_planes(project: Project, planes: Planes, masks: list[np.ndarray], author: str, note: str) -> list[str]:
    """Store ``masks`` as the human labels of the planes, written by ``author``, in one commit (the planes the
    project lacks are added first). Returns the image ids. Never cancelled: a correction the user marked is
    always stored (a failure leaves the project unchanged)."""
    with project.transaction():
        ids = [_stored(project, planes, k) for k in range(len(planes.indices))]
        for image_id, mask in zip(ids, masks):
            project.mark_corrected(image_id, mask, author=author, note=note)
    return ids
