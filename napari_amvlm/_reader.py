"""npe2 reader: open an annotation project (its folder or its ``amvlm-project.json``), a DICOM file, a folder holding
one DICOM series, or a NIfTI file in napari.

A DICOM or NIfTI image opens as one image layer, a stack for several planes, as displayed (:mod:`napari_amvlm.io`),
with its pixel spacing as the layer's scale and ``metadata["amvlm_image"]`` = {"source", "kind", "orientation",
"spacing"}: the widget reads the side convention and the spacing of each plane from it.

Returns layer data tuples only (no Qt, no napari import). Images of the same shape and type are stacked
into one lazy image layer (one slice per image, in the order added) with a labels layer beside it that shows,
per slice, the human label where the image is corrected, else the latest prediction, else nothing. Both
layers carry ``metadata["amvlm"]`` = {"project": folder, "image_ids": [...], "mask_kinds": [...]} so that a
widget can map slice i back to its image and save corrections with ``Project.mark_corrected``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .io import read_scan
from .io.dicom import SUFFIXES as DICOM_SUFFIXES
from .io.dicom import is_dicom, is_series_folder
from .io.nifti import is_nifti
from .project import Project, is_project

LayerData = tuple[Any, dict[str, Any], str]
EDITABLE_LABELS_BYTES = 256 * 2**20  # labels up to this size are loaded (editable); larger stay lazy (read-only)
IMAGE_KEY = "amvlm_image"  # layer metadata key of what the file said about its image


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[Any]] | None:
    """The reader of ``path`` (cheap checks): :func:`read_project` for an annotation project, :func:`read_image`
    for a DICOM file or series folder or a NIfTI file, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if is_project(path):
        return read_project
    if is_nifti(path) or str(path).lower().endswith(DICOM_SUFFIXES) or is_dicom(path) or is_series_folder(path):
        return read_image
    return None


def read_image(path: str | os.PathLike | list[str]) -> list[Any]:
    """One image layer (a stack for several planes) of a DICOM or NIfTI image, its spacing as the scale."""
    if isinstance(path, list):
        path = path[0]
    scan = read_scan(path)
    meta = {IMAGE_KEY: {"source": scan.source, "kind": scan.kind, "spacing": list(scan.spacing or ()),
                        "orientation": scan.orientation.to_dict() if scan.orientation else None}}
    kwargs: dict[str, Any] = {"name": os.path.basename(os.path.normpath(str(path))), "rgb": scan.rgb,
                              "metadata": meta}
    if scan.spacing:
        kwargs["scale"] = list(scan.spacing)
    if scan.pixels.dtype == np.uint8:
        kwargs["contrast_limits"] = [0, 255]
    return [(scan.pixels, kwargs, "image")]


def read_project(path: str | os.PathLike | list[str]) -> list[Any]:
    """Layer data tuples (image, labels) of a project, one pair per group of same-shaped images."""
    if isinstance(path, list):
        path = path[0]
    project = Project.open(path, mode="r")
    groups: dict[tuple[Any, ...], list[str]] = {}
    for rec in project.images():
        groups.setdefault((rec.shape, rec.dtype, rec.rgb), []).append(rec.id)
    if not groups:
        return [(None,)]  # read fine, nothing to show (napari's convention)
    layers: list[Any] = []
    for ids in groups.values():
        title = project.name if len(groups) == 1 else f"{project.name} {project.image(ids[0]).shape[:2]}"
        layers.extend(_group_layers(project, ids, title))
    return layers


def _best_mask(project: Project, image_id: str) -> tuple[Any, str | None]:
    for kind in ("human", "prediction"):
        mask = project.read_mask(image_id, kind)
        if mask is not None:
            return mask, kind
    return None, None


def _group_layers(project: Project, ids: list[str], title: str) -> list[LayerData]:
    records = [project.image(i) for i in ids]
    masks, kinds = zip(*(_best_mask(project, i) for i in ids))
    meta = {"amvlm": {"project": str(project.root), "image_ids": list(ids), "mask_kinds": list(kinds)}}
    lo, hi = min(r.vmin for r in records), max(r.vmax for r in records)
    image_kwargs = {
        "name": title, "rgb": records[0].rgb, "metadata": meta,
        "contrast_limits": [lo, hi if hi > lo else lo + 1],
    }  # fmt: skip
    image = project.read_image(ids[0]) if len(ids) == 1 else _lazy_stack(project, records)
    labels = _labels(masks, records[0].plane_shape)
    return [(image, image_kwargs, "image"), (labels, {"name": f"{title} labels", "metadata": meta}, "labels")]


def _lazy_stack(project: Project, records: list[Any]) -> Any:
    """A dask stack whose slice i opens and reads image i only when napari shows it."""
    import dask
    import dask.array as da

    def read(image_id: str) -> np.ndarray:
        return np.asarray(project.read_image(image_id)[...])

    shape, dtype = records[0].shape, np.dtype(records[0].dtype)
    parts = [
        da.from_delayed(dask.delayed(read, pure=True)(r.id, dask_key_name=f"amvlm-{r.array}"), shape, dtype)
        for r in records
    ]
    return da.stack(parts)


def _labels(masks: tuple[Any, ...], plane: tuple[int, int]) -> Any:
    """Labels for every slice: loaded into memory when small enough to edit, else a lazy dask stack."""
    dtype = np.result_type(np.uint8, *(m.dtype for m in masks if m is not None))
    single = len(masks) == 1
    if len(masks) * plane[0] * plane[1] * dtype.itemsize <= EDITABLE_LABELS_BYTES:
        out = np.zeros((len(masks), *plane), dtype)
        for i, m in enumerate(masks):
            if m is not None:
                out[i] = m[...]
        return out[0] if single else out
    import dask.array as da

    parts = [
        da.from_array(m, chunks=m.chunks, name=f"amvlm-mask-{i}-{id(m)}").astype(dtype)
        if m is not None else da.zeros(plane, dtype, chunks=512)
        for i, m in enumerate(masks)
    ]  # fmt: skip
    return parts[0] if single else da.stack(parts)
