"""What the widget's worker thread runs: load a model, segment planes, score images by uncertainty, store
human labels.

Plain functions over the engine (no Qt), so they can run on any thread and be tested directly. The long ones
take the widget's ``stop`` event and end with :class:`~napari_amvlm._cancel.Cancelled` between planes once it is
set (the viewer or the project is closing).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._cancel import check
from ..device import resolve_device
from ..inference import Segmenter
from ..model.hub import SEG_WEIGHTS_NAME, load_segmenter
from ..project import Project
from ..project.files import sha256_file
from ..training.round_data import warm_up_export
from ._layers import PlanePrediction, Planes, SegmentResult


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


def load(folder: str | Path, device: str, round: int | None = None) -> LoadedModel:
    """Load a model folder for inference; raises ModelLoadError (a ValueError) for anything that is not one."""
    dev = resolve_device(device)
    folder = Path(folder)
    seg = load_segmenter(folder, dev)
    warm_up_export()  # (here, on the loading thread, not during the first round)
    return LoadedModel(folder, Segmenter(seg, dev), sha256_file(folder / SEG_WEIGHTS_NAME), str(dev), round)


def from_round(result, device: str) -> LoadedModel:
    """The model of a finished retraining round (already loaded by RetrainJob.finalize)."""
    dev = resolve_device(device)
    return LoadedModel(result.folder, Segmenter(result.segmenter, dev), result.model_sha, str(dev), result.index)


def _stored(project: Project, planes: Planes, k: int, pixels: np.ndarray | None = None) -> str:
    """The project id of plane ``k``, adding the plane to the project when it lacks it (``pixels``: the plane,
    already read)."""
    if planes.known[k]:
        return planes.known[k]
    pixels = planes.read(k) if pixels is None else pixels
    return project.add_image(pixels, name=planes.names[k], rgb=planes.rgb)[0]


def predict_planes(model: LoadedModel, project: Project, planes: Planes, image: str, prompt: str,
                   stop: threading.Event | None = None) -> SegmentResult:  # fmt: skip
    """Segment each plane for ``prompt``: add the planes the project lacks, store each mask as the image's
    prediction, and return the result. Lazy planes (dask, zarr) are read here, on the worker thread."""
    t0 = time.perf_counter()
    hits = model.segmenter.cache_hits
    project.add_model(model.weights, name=model.folder.name)
    out = []
    for k, index in enumerate(planes.indices):
        check(stop)
        plane = planes.read(k)
        image_id = _stored(project, planes, k, plane)
        pred = model.segmenter.predict(plane, prompt)
        project.write_prediction(image_id, pred.mask, model=model.sha, prompt=prompt, round=model.round)
        out.append(PlanePrediction(index, image_id, pred.mask, pred.uncertainty))
    provenance = {"model": model.sha, "model_folder": str(model.folder), "round": model.round,
                  "device": model.device, "mode": "fused", "seconds": round(time.perf_counter() - t0, 3)}
    return SegmentResult(image, prompt, out, provenance, model.segmenter.cache_hits - hits)


def score_images(model: LoadedModel, project: Project, ids: list[str], default_prompt: str,
                 stop: threading.Event | None = None) -> dict[str, float]:  # fmt: skip
    """Mean uncertainty of each image under its latest prompt (``default_prompt`` when it has none)."""
    scores = {}
    for image_id in ids:
        check(stop)
        prompts = project.prompts(image_id)
        prompt = prompts[-1].text if prompts else default_prompt
        if not prompt.strip():
            continue
        pred = model.segmenter.predict(np.asarray(project.read_image(image_id)[...]), prompt)
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
