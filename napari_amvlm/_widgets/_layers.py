"""Layer helpers of the AMVLM widget: which planes of an image to segment, which project image each plane is,
and writing predictions into Labels / uncertainty layers with their provenance. No Qt here.

Convention (shared with the project reader): ``layer.metadata["amvlm"]`` holds ``project`` (folder) and
``image_ids`` (one project image id per 2D plane, leading axes flattened in C order; None = not stored yet).
Each image has one mask, a Labels layer named "<image> mask" whose metadata adds ``image_layer``, ``prompt``,
``model``, ``round``, ``time`` etc.; on request one uncertainty layer shows the uncertainty of the image in view.
Both take the image layer's transform (scale, translate, rotate, shear, affine, units) and follow its changes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from .._reader import IMAGE_KEY
from .._sample_data import MODEL_KEY, TEXT_KEY
from ..io import reading
from ..io.image import Orientation
from ..project import Project
from ..project.records import utc_now

KEY = "amvlm"
Index = tuple[int, ...]
TRANSFORMS = ("scale", "translate", "rotate", "shear", "affine", "units")  # what a mask copies from its image


class UserError(ValueError):
    """A problem the user can fix; the widget shows the message as is."""


def plane_shape(layer: Image) -> tuple[int, ...]:
    """Spatial shape of an image layer (no colour axis), level 0 of a multiscale image."""
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(data.shape[: layer.ndim])


def lead_shape(layer: Image) -> tuple[int, ...]:
    """The stack axes in front of the 2D planes ((), (Z,), (T, Z), ...)."""
    return plane_shape(layer)[:-2]


def plane_indices(layer: Image, world_point: tuple[float, ...], all_slices: bool) -> list[Index]:
    """The planes to work on: every plane, or the one the viewer shows now."""
    lead = lead_shape(layer)
    if all_slices or not lead:
        return [tuple(i) for i in np.ndindex(*lead)]
    data_pos = layer.world_to_data(np.asarray(world_point[-layer.ndim :]))
    return [tuple(int(np.clip(round(float(p)), 0, n - 1)) for p, n in zip(data_pos[: len(lead)], lead))]


def flat(index: Index, lead: tuple[int, ...]) -> int:
    return int(np.ravel_multi_index(index, lead)) if lead else 0


def plane_view(layer: Image, index: Index) -> Any:
    """The plane as the layer holds it, not read yet (a lazy array stays lazy: read it off the GUI thread)."""
    data = layer.data[0] if layer.multiscale else layer.data
    return data[index]


def meta(layer: Any) -> dict[str, Any]:
    return layer.metadata.get(KEY) or {}


def image_text(layer: Image) -> str:
    """The sentence that came with an image (sample data), or ''."""
    return str(layer.metadata.get(TEXT_KEY) or "")


def image_model(layer: Image) -> str:
    """The name of the bundled model made for an image's kind (sample data), or ''."""
    return str(layer.metadata.get(MODEL_KEY) or "")


def _layer_ids(project: Project, layer: Image) -> list[str | None]:
    """The layer's per-plane project ids (None where unknown), for ``project`` only."""
    m = meta(layer)
    ids = list(m.get("image_ids") or []) if m.get("project") == str(project.root) else []
    return ids + [None] * (int(np.prod(lead_shape(layer), dtype=int)) - len(ids))


def known_image_ids(project: Project, layer: Image, indices: list[Index]) -> list[str | None]:
    """Project ids of the given planes where the project already holds them, else None."""
    ids, lead = _layer_ids(project, layer), lead_shape(layer)
    return [i if i is not None and i in project else None for i in (ids[flat(k, lead)] for k in indices)]


def plane_name(layer: Image, index: Index) -> str:
    """The name a plane gets in a project: the layer's name, plus "_z0003" for plane 3 of a stack."""
    lead = lead_shape(layer)
    return layer.name + (f"_z{flat(index, lead):04d}" if lead else "")


def remember_image_ids(project: Project, layer: Image, indices: list[Index], ids: list[str]) -> None:
    """Record in the layer's metadata which project image each plane is."""
    all_ids, lead = _layer_ids(project, layer), lead_shape(layer)
    for index, image_id in zip(indices, ids):
        all_ids[flat(index, lead)] = image_id
    layer.metadata = {**layer.metadata, KEY: {**meta(layer), "project": str(project.root), "image_ids": all_ids}}


@dataclass
class Planes:
    """Planes of an image layer, as the worker thread gets them: views not read yet (lazy data is read there)."""

    indices: list[Index]
    views: list[Any]
    known: list[str | None]  # project ids of the planes the project already holds, else None
    names: list[str]  # the names planes get when added to the project
    rgb: bool
    path: str | None  # the file the layer was opened from, if any
    from_file: bool = False  # the layer came from a DICOM or NIfTI file (which may say how it is oriented)
    orientation: Orientation | None = None  # what that file says: the patient directions of rows and columns
    spacing: tuple[float, float] | None = None  # (row, column) pixel size in mm, from that file
    lead: tuple[int, ...] = ()  # the stack axes of the layer (() for one image)
    file_sha256: str | None = None  # of that file (or series folder), once the worker thread computed it

    def read(self, k: int) -> np.ndarray:
        """The pixels of plane ``k``; a read that fails (a lazily opened file that went bad since) is one
        clear error naming the file, or the plane when the layer came from no file."""
        with reading(self.path or f"the image '{self.names[k]}'"):
            return np.asarray(self.views[k])


def layer_planes(project: Project, layer: Image, indices: list[Index]) -> Planes:
    """The given planes of ``layer`` (see :class:`Planes`)."""
    path = getattr(getattr(layer, "source", None), "path", None)
    info = layer.metadata.get(IMAGE_KEY)
    info = info if isinstance(info, dict) else None
    spacing = None
    if info and len(info.get("spacing") or ()) >= 2:
        try:
            spacing = tuple(float(v) for v in info["spacing"][-2:])
        except (TypeError, ValueError):
            spacing = None
    return Planes(indices, [plane_view(layer, i) for i in indices], known_image_ids(project, layer, indices),
                  [plane_name(layer, i) for i in indices], bool(layer.rgb), path, info is not None,
                  Orientation.from_dict(info.get("orientation")) if info else None, spacing, lead_shape(layer))


def source_image(viewer: Any, labels: Labels, fallback: Image | None) -> Image | None:
    """The image a Labels layer belongs to: named in its metadata, sharing its project ids, or ``fallback``."""
    m = meta(labels)
    name = m.get("image_layer")
    if name in viewer.layers and isinstance(viewer.layers[name], Image):
        return viewer.layers[name]
    for layer in viewer.layers:
        if isinstance(layer, Image) and m.get("image_ids") and meta(layer).get("image_ids") == m.get("image_ids"):
            return layer
    images = [layer for layer in viewer.layers if isinstance(layer, Image) and not meta(layer).get("uncertainty")]
    return fallback if fallback in images else (images[0] if len(images) == 1 else None)


def check_labels_shape(labels: Labels, image: Image) -> None:
    want = plane_shape(image)
    if tuple(labels.data.shape) != want:
        raise UserError(f"the Labels layer '{labels.name}' has shape {tuple(labels.data.shape)} but the image "
                        f"'{image.name}' has {want}: paint on a Labels layer of the image's shape")


def elide_middle(text: str, limit: int = 120) -> str:
    """``text`` shortened to ``limit`` characters by an ellipsis in the middle (layer names, messages)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 image", "2 images" (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


@dataclass
class PlanePrediction:
    """The result of one plane, as the worker thread returns it."""

    index: Index
    image_id: str | None
    mask: np.ndarray
    uncertainty: np.ndarray


@dataclass
class SegmentResult:
    image: str  # image layer name
    prompt: str
    planes: list[PlanePrediction]
    provenance: dict[str, Any] = field(default_factory=dict)  # model folder, sha, round, device, mode, sides
    cache_hits: int = 0
    notices: list[str] = field(default_factory=list)  # what was ignored of the prompt, slices skipped
    fit: Any = None  # (Fit, the bundled model the image fits instead or None): the image vs the model's data


@dataclass
class MaskState:
    """One plane of a mask as the widget showed it (a prediction, a stored label, a draft or nothing), kept to tell
    whether the person edited it and by how much."""

    mask: np.ndarray  # the plane as shown
    provenance: dict[str, Any] = field(default_factory=dict)  # what made it: what, prompt, model, round, sides

    def edited(self, plane: Any) -> bool:
        """Whether ``plane`` (the layer's plane now) differs from what was shown (foreground vs background)."""
        return not np.array_equal(np.asarray(plane) != 0, self.mask != 0)

    @property
    def source(self) -> dict[str, Any]:
        """What made the shown mask, in :meth:`Project.mark_corrected`'s terms."""
        return {k: self.provenance.get(k) for k in ("prompt", "model", "round", "sides") if k in self.provenance}


def transform_of(layer: Any) -> dict[str, Any]:
    """A layer's transform, as keyword arguments of ``viewer.add_*`` (a new layer gets it at no extra cost)."""
    return {name: getattr(layer, name) for name in TRANSFORMS}


def copy_transform(src: Any, dst: Any) -> None:
    """Give layer ``dst`` the transform of layer ``src`` (same number of spatial dimensions); only the parts that
    differ are set (each one set redraws the layer)."""
    for name in TRANSFORMS:
        new, old = getattr(src, name), getattr(dst, name)
        same = new == old if name == "units" else np.allclose(getattr(new, "affine_matrix", new),
                                                                 getattr(old, "affine_matrix", old))
        if not same:
            setattr(dst, name, new)


_FOLLOWING: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()  # layer -> ids it follows


def follow_transform(src: Any, dst: Any) -> None:
    """Copy ``src``'s transform to ``dst`` now and whenever it changes, while ``dst`` belongs to ``src`` (its
    metadata names ``src`` as its image) and both exist."""
    copy_transform(src, dst)
    if id(src) in _FOLLOWING.setdefault(dst, set()):
        return
    _FOLLOWING[dst].add(id(src))
    src_ref, dst_ref = weakref.ref(src), weakref.ref(dst)

    def follow(*_: Any) -> None:
        a, b = src_ref(), dst_ref()
        if a is not None and b is not None and meta(b).get("image_layer") == a.name:
            copy_transform(a, b)
        elif a is not None:  # the mask is gone, or shows another image now: stop following
            for name in TRANSFORMS:
                getattr(a.events, name).disconnect(follow)
            if b is not None:
                _FOLLOWING.get(b, set()).discard(id(a))

    for name in TRANSFORMS:  # (napari's events hold a plain function strongly; it holds neither layer)
        getattr(src.events, name).connect(follow)


def _find(viewer: Any, kind: type, image: str, what: tuple[str, ...]) -> Any:
    for layer in reversed(list(viewer.layers)):  # the newest first
        m = meta(layer)
        if isinstance(layer, kind) and m.get("image_layer") == image and m.get("what") in what:
            return layer
    return None


def mask_layer(viewer: Any, image: Image) -> Labels | None:
    """The mask (Labels layer) of an image layer, or None."""
    return _find(viewer, Labels, image.name, ("prediction", "mask"))


def show_result(viewer: Any, image: Image, res: SegmentResult) -> Labels:
    """Write a result into the image's mask (a new one, "<image> mask", if it has none); returns the mask. (The
    widget asks before it replaces what the person painted.)"""
    shape = plane_shape(image)
    labels = mask_layer(viewer, image)
    lab_data = labels.data if labels is not None else np.zeros(shape, np.uint8)
    for p in res.planes:
        lab_data[p.index] = p.mask.astype(lab_data.dtype)
    lead = lead_shape(image)
    ids = list(meta(labels).get("image_ids") or [None] * int(np.prod(lead, dtype=int))) if labels else \
        [None] * int(np.prod(lead, dtype=int))
    for p in res.planes:
        ids[flat(p.index, lead)] = p.image_id
    keep = {k: v for k, v in meta(labels).items() if k == "series"} if labels is not None else {}
    info = {**keep, **res.provenance, "what": "prediction", "prompt": res.prompt, "image_layer": image.name,
            "image_ids": ids, "time": utc_now()}
    if labels is None:
        labels = viewer.add_labels(lab_data, name=f"{image.name} mask", metadata={KEY: info}, **transform_of(image))
        follow_transform(image, labels)
    else:
        labels.metadata = {**labels.metadata, KEY: info}
        labels.refresh()
    viewer.layers.selection.active = labels
    return labels


def show_uncertainty(viewer: Any, image: Image, maps: dict[str, np.ndarray]) -> Image:
    """Show the uncertainty of ``image`` (``maps``: project image id -> map of its latest prediction; planes
    without one show 0) in the one uncertainty layer, made on first use."""
    data = np.zeros(plane_shape(image), np.float32)
    ids = meta(image).get("image_ids") or []
    for k, image_id in enumerate(ids):
        if image_id in maps and maps[image_id].shape == data.shape[-2:]:
            data[np.unravel_index(k, lead_shape(image)) if lead_shape(image) else ()] = maps[image_id]
    info = {"what": "uncertainty", "uncertainty": True, "image_layer": image.name}
    unc = next((la for la in viewer.layers if isinstance(la, Image) and meta(la).get("uncertainty")), None)
    if unc is not None and unc.data.shape != data.shape:
        viewer.layers.remove(unc)
        unc = None
    if unc is None:
        unc = viewer.add_image(data, name=f"{image.name} uncertainty", colormap="inferno", opacity=0.5,
                               blending="additive", contrast_limits=(0.0, 1.0), metadata={KEY: info},
                               **transform_of(image))
    else:
        unc.data, unc.name, unc.visible = data, f"{image.name} uncertainty", True
        unc.metadata = {**unc.metadata, KEY: info}
        copy_transform(image, unc)
    follow_transform(image, unc)
    return unc


def hide_uncertainty(viewer: Any) -> None:
    """Remove the uncertainty layer, if shown."""
    for layer in [la for la in viewer.layers if isinstance(la, Image) and meta(la).get("uncertainty")]:
        viewer.layers.remove(layer)
