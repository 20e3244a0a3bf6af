"""What the widget's worker thread runs: load a model, segment planes, score images by uncertainty, store
human labels, open / copy a project, add images to it and read an image with its mask for the series.

Plain functions over the engine (no Qt), so they can run on any thread and be tested directly. The long ones
take the widget's ``stop`` event and end with :class:`~napari_amvlm._cancel.Cancelled` between planes once it is
set (the viewer or the project is closing).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._cancel import check
from ..device import resolve_device
from ..inference import Segmenter
from ..inference.postprocess import Cleanup
from ..inference.prompts import read_vocabulary
from ..inference.views import recorded_prompt
from ..io.image import ImageError, as_image
from ..model.hub import SEG_WEIGHTS_NAME
from ..model.trained_on import Fit, TrainedOn, check_fit, fitting_models, image_stats, read_trained_on
from ..project import ImageRecord, MaskKind, Project, clinical
from ..project.files import ImagePlane, sha256_file
from ..resources import models_dir
from ..training import loop
from ..training.round_data import warm_up_export
from ._layers import MaskState, PlanePrediction, Planes, SegmentResult, flat

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
    trained_on: TrainedOn | None = None  # what it was trained on (its trained_on.json), None: not known

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
    import pandas  # noqa: F401  (napari imports it when it makes the first Labels layer: not on the GUI thread)
    model = LoadedModel(folder, segmenter, sha256_file(folder / SEG_WEIGHTS_NAME), str(dev), round,
                        read_trained_on(folder))
    report and report(2)
    return model


def from_round(result, device: str, trained_on: TrainedOn | None = None) -> LoadedModel:
    """The model of a finished retraining round (already loaded by RetrainJob.finalize); it was trained on the
    same kind of images as the model it continues (``trained_on``)."""
    dev = resolve_device(device)
    segmenter = Segmenter(result.segmenter, dev, vocabulary=read_vocabulary(result.folder))
    return LoadedModel(result.folder, segmenter, result.model_sha, str(dev), result.index, trained_on)


def image_fit(model: LoadedModel | None, pixels: np.ndarray | None) -> tuple[Fit, Path | None]:
    """(how an image fits the model's training images, the bundled model it fits instead, if any). A model
    folder that does not say what it was trained on fits every image."""
    if model is None or model.trained_on is None or pixels is None:
        return Fit(), None
    stats = image_stats(pixels)
    fit = check_fit(model.trained_on, stats)
    if fit.ok:
        return fit, None
    others = [f for f in fitting_models(stats, sorted(models_dir().iterdir())) if f.resolve() != model.folder.resolve()]
    return fit, (others[0] if others else None)


def _stored(project: Project, planes: Planes, k: int, pixels: np.ndarray | None = None) -> str:
    """The project id of plane ``k``, adding the plane to the project when it lacks it (``pixels``: the plane,
    already read)."""
    if planes.known[k]:
        return planes.known[k]
    pixels = planes.read(k) if pixels is None else pixels
    if planes.from_file and planes.path:  # a slice of a DICOM or NIfTI file: its mask can be written beside it
        if planes.file_sha256 is None:
            planes.file_sha256 = clinical.source_digest(Path(planes.path))
        lead = planes.lead
        return project.add_plane(ImagePlane(
            pixels, planes.names[k], planes.rgb, source=str(Path(planes.path).resolve()),
            slice=flat(planes.indices[k], lead) if lead else None, n_slices=int(np.prod(lead)) if lead else 1,
            file_sha256=planes.file_sha256))
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
    out, skipped, note, fit = [], [], "", None
    for k, index in enumerate(planes.indices):
        check(stop)
        plane = planes.read(k)
        fit = fit or image_fit(model, plane)  # (the first plane speaks for the image)
        try:
            typed = as_image(plane, spacing=planes.spacing, orientation=planes.orientation, source=planes.names[k])
            pred = model.segmenter.predict(typed, prompt, sides=sides, cleanup=cleanup)
            note = pred.sides_note
        except ImageError as err:
            if len(planes.indices) == 1:
                raise
            skipped.append(f"{planes.names[k]}: {err}")
        else:
            image_id = _stored(project, planes, k, plane)
            text, recorded_sides = recorded_prompt(prompt, sides, planes.orientation)
            project.write_prediction(image_id, pred.mask, model=model.sha, prompt=text, round=model.round,
                                     sides=recorded_sides)
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
    return SegmentResult(image, prompt, out, provenance, model.segmenter.cache_hits - hits, notices, fit)


@dataclass
class Scores:
    """What scoring images found: the mean uncertainty of each, and its uncertainty map."""

    means: dict[str, float]
    maps: dict[str, np.ndarray]


def score_images(model: LoadedModel, project: Project, ids: list[str], default_prompt: str,
                 sides: str = "image", stop: threading.Event | None = None, report: Report | None = None,
                 cleanup: Cleanup | None = None) -> Scores:  # fmt: skip
    """Segment each image under its latest prompt (``default_prompt``, written in ``sides``, when it has none) and
    store the mask as its prediction, so that the image, once shown, comes with the model's proposal; returns the
    uncertainty of each. Images the model cannot segment meaningfully (ImageError) get no score. ``report`` hears
    of each image done."""
    scores = Scores({}, {})
    if ids:
        project.add_model(model.weights, name=model.folder.name)
    for k, image_id in enumerate(ids):
        check(stop)
        report and report(k)
        chosen = loop.image_prompt(project, image_id, default_prompt, sides)
        if chosen is None:
            continue
        prompt, prompt_sides = chosen
        try:
            pred = model.segmenter.predict(np.asarray(project.read_image(image_id)[...]), prompt, sides=prompt_sides,
                                           cleanup=cleanup)
        except ImageError:
            continue
        project.write_prediction(image_id, pred.mask, model=model.sha, prompt=prompt, round=model.round,
                                 sides=prompt_sides)
        scores.means[image_id], scores.maps[image_id] = float(pred.uncertainty.mean()), pred.uncertainty
    return scores


def mark_planes(project: Project, planes: Planes, masks: list[np.ndarray], author: str, note: str,
                shown: list[MaskState | None] | None = None) -> list[str]:  # fmt: skip
    """Store ``masks`` as the human labels of the planes, written by ``author``, in one commit (the planes the
    project lacks are added first); ``shown``: what the person was shown of each plane, from which the label's
    edit effort is counted. Returns the image ids. Never cancelled: a correction the user marked is always stored
    (a failure leaves the project unchanged)."""
    shown = shown or [None] * len(masks)
    with project.transaction():
        ids = [_stored(project, planes, k) for k in range(len(planes.indices))]
        for image_id, mask, state in zip(ids, masks, shown):
            started = (state.mask, state.source) if state is not None else (None, None)
            project.mark_corrected(image_id, mask, author=author, note=note, started_from=started[0],
                                   source=started[1])
    return ids


def open_project(folder: str | Path) -> Project:
    """Open (and check) a project folder."""
    return Project.open(folder)


def copy_project(project: Project, dest: Path) -> Project:
    """Copy a project's folder to ``dest`` (a new or empty folder) and open the copy."""
    if project.root.resolve() in (dest.resolve(), *dest.resolve().parents):
        raise ValueError(f"{dest} is inside the project itself: choose a folder outside {project.root}")
    with project.reading():
        shutil.copytree(project.root, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".lock", ".*.tmp*"))
    (dest / ".lock").touch()
    return Project.open(dest)


def add_images(project: Project, paths: list[str]) -> list[str]:
    """Add image files and folders to the project; returns the ids (of images already in it too)."""
    return project.add_images(paths)


def export_masks(project: Project, folder: str | Path, fmt: str, sources: list[str] | None = None) -> list[Path]:
    """Write the project's corrected masks into ``folder``: ``fmt`` "png" or "tif", one file per image named after
    it; "beside": one file per DICOM or NIfTI ``sources`` entry (a DICOM-SEG, a NIfTI volume), all its planes.
    Nothing is written when a file would be overwritten (:class:`FilesExist`) or a source does not fit."""
    if fmt == "beside":
        return clinical.export_beside(project, Path(folder), [Path(s) for s in sources or []], MaskKind.HUMAN, None,
                                      "", overwrite=False)
    return project.export_masks(folder, kind=MaskKind.HUMAN, fmt=fmt)


@dataclass
class Shown:
    """A project image as the series shows it: its pixels and the mask to show with it."""

    record: ImageRecord
    pixels: np.ndarray
    mask: np.ndarray  # (H, W) uint8: a draft, else the human label, else the latest prediction, else zeros
    state: MaskState  # what the mask is (kept to tell later whether the person edited it)


def read_shown(project: Project, image_id: str, draft: Any = None) -> Shown:
    """Read an image and the mask to show with it (``draft``: a mask edited earlier and not marked, with the
    state it was started from)."""
    with project.reading():
        record = project.image(image_id)
        pixels = np.asarray(project.read_image(image_id)[...])
        if draft is not None:
            return Shown(record, pixels, np.array(draft.mask), draft.state)
        for kind in (MaskKind.HUMAN, MaskKind.PREDICTION):
            rec = project.mask_record(image_id, kind)
            if rec is not None:
                mask = (np.asarray(project.read_mask_record(rec)[...]) != 0).astype(np.uint8)
                p = rec.provenance
                info = {"what": kind.value, "prompt": p.prompt, "model": p.model, "round": p.round, "sides": p.sides}
                return Shown(record, pixels, mask, MaskState(mask.copy(), info))
    empty = np.zeros(record.plane_shape, np.uint8)
    return Shown(record, pixels, empty, MaskState(empty.copy(), {"what": "none"}))
