"""The annotation project store: images, human labels, predictions, pseudo-labels, prompts, model versions
and training rounds, with provenance. With :mod:`napari_amvlm._project_store` (its transactional core), the only module of napari-amvlm that
imports zarr.

On disk a project is a folder::

    <project>/amvlm-project.json   the manifest: every record, and the names of the arrays that hold data
    <project>/arrays/<name>/        one zarr array (zarr format 2) per image or mask; never changed once named
    <project>/.lock                 advisory lock taken by writers

**Commit protocol.** A change writes its new arrays under fresh names, fsyncs them, then replaces the
manifest atomically (temporary file, fsync, ``os.replace``, fsync of the folder). The manifest is the commit
point: readers trust only what it names, so a writer killed at any moment (even by SIGKILL) leaves the last
committed state; arrays it had half written are unreferenced and removed by the next writer. Superseded
predictions and pseudo-labels stay on disk for ``trash_grace_s`` seconds (lazy views held by a viewer keep
working) and are then deleted. Human labels are never deleted: a newer correction moves the older one to the
image's history.

**Human labels.** Only :meth:`Project.mark_corrected` (and :meth:`Project.import_masks`, which calls it) writes
the human slot, and it requires a person as author. Model writers (:meth:`Project.write_prediction`,
:meth:`Project.write_pseudo_label`, :meth:`Project.record_round`) have no way to address that slot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ._project_io import (
    ImagePlane,
    list_image_files,
    normalize_mask,
    read_image_file,
    sha256_pixels,
    slug,
    split_planes,
)
from ._project_records import (
    CorruptProjectError,
    ImageRecord,
    MaskKind,
    MaskRecord,
    ModelRecord,
    NotAProjectError,
    ProjectError,
    ProjectVersionError,
    PromptRecord,
    Provenance,
    RoundRecord,
    Status,
    utc_now,
)
from ._project_store import FORMAT_VERSION, MANIFEST_NAME, ProjectStore, is_project
from ._project_transfer import MaskImport

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorruptProjectError",
    "ImageRecord",
    "MaskImport",
    "MaskKind",
    "MaskRecord",
    "ModelRecord",
    "NotAProjectError",
    "Project",
    "ProjectError",
    "ProjectVersionError",
    "PromptRecord",
    "Provenance",
    "RoundRecord",
    "Status",
    "is_project",
]  # fmt: skip


class Project(ProjectStore):
    """An annotation project folder. Create with :meth:`create`, open with :meth:`open`.

    Every change is one transaction (methods open one themselves; group many with :meth:`transaction`):
    it takes the writer lock, picks up commits made by other processes, and commits atomically at the end.
    Arrays are returned as lazy, read-only zarr arrays: slicing reads only the chunks needed.
    """

    batch_size: int = 256  # images per commit when adding a folder

    def add_image(self, image: str | os.PathLike | np.ndarray, *, name: str | None = None,
                  rgb: bool | None = None) -> list[str]:  # fmt: skip
        """Add an image file or array; a stack adds one image per slice. Returns the ids, in slice order.

        An image whose pixels are already in the project is not added twice: its existing id is returned.
        """
        if isinstance(image, (str, os.PathLike)):
            planes = read_image_file(image, rgb)
        else:
            planes = split_planes(np.asarray(image), name or "image", rgb)
        with self.transaction():
            return [self._add_plane(p) for p in planes]

    def add_images(self, items: Iterable[str | os.PathLike | np.ndarray] | str | os.PathLike, *,
                   recursive: bool = False, rgb: bool | None = None) -> list[str]:  # fmt: skip
        """Add files, folders (their image files, sorted) and arrays; commits every ``batch_size`` items."""
        if isinstance(items, (str, os.PathLike)):
            items = [items]
        expanded: list[Any] = []
        for item in items:
            is_dir = isinstance(item, (str, os.PathLike)) and Path(item).is_dir()
            expanded.extend(list_image_files(item, recursive) if is_dir else [item])
        ids: list[str] = []
        for start in range(0, len(expanded), self.batch_size):
            with self.transaction():
                for item in expanded[start : start + self.batch_size]:
                    ids.extend(self.add_image(item, rgb=rgb))
        return ids

    def _add_plane(self, plane: ImagePlane) -> str:
        digest = sha256_pixels(plane.data)
        if digest in self._by_sha:
            return self._by_sha[digest]
        name = slug(plane.name)
        if name in self._names:
            name = f"{name}_{digest[:8]}"
        image_id = f"{name}-{digest[:10]}"
        data = plane.data
        finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
        rec = ImageRecord(
            id=image_id, name=name, source=plane.source, slice=plane.slice, n_slices=plane.n_slices,
            sha256=digest, file_sha256=plane.file_sha256, shape=tuple(data.shape), dtype=data.dtype.name,
            rgb=plane.rgb, vmin=float(finite.min()) if finite.size else 0.0,
            vmax=float(finite.max()) if finite.size else 0.0, array=self._write_array(data, "img"),
            added=utc_now(),
        )  # fmt: skip
        self._m["images"][image_id] = {**rec.to_dict(), "masks": {}, "human_history": [], "prompts": []}
        self._by_sha[digest] = image_id
        self._names.add(name)
        self._dirty = True
        return image_id

    def read_image(self, image_id: str) -> zarr.Array:
        """The pixels of an image as a lazy read-only zarr array ((H, W) or (H, W, C))."""
        return self._open_array(self._entry(image_id)["array"])

    def read_mask(self, image_id: str, kind: MaskKind | str) -> zarr.Array | None:
        """An image's mask of ``kind`` ("human", "prediction", "pseudo_label") as a lazy array, or None."""
        rec = self.mask_record(image_id, kind)
        return self._open_array(rec.array) if rec else None

    def read_mask_record(self, record: MaskRecord) -> zarr.Array:
        """The array of any mask record, e.g. an older human label from :meth:`human_history`."""
        return self._open_array(record.array)

    def mark_corrected(self, image_id: str, mask: Any = None, *, author: str, note: str = "") -> MaskRecord:
        """Store ``mask`` as the human label of an image, written by the person ``author``.

        The only way to write a human label. ``mask=None`` accepts the current prediction as it is. The
        previous human label, if any, is kept in :meth:`human_history`.
        """
        with self.transaction():
            rec = self.image(image_id)
            extra: dict[str, Any] = {}
            if mask is None:
                pred = self.mask_record(image_id, MaskKind.PREDICTION)
                if pred is None:
                    raise ProjectError(f"{image_id} has no prediction to accept; pass the corrected mask")
                data, foreground, source = np.asarray(self._open_array(pred.array)[...]), None, None
                p = pred.provenance
                extra = {"prompt": p.prompt, "model": p.model, "round": p.round}
                note = note or "accepted the prediction unchanged"
            else:
                data, foreground, source = normalize_mask(mask, rec.plane_shape)
            provenance = Provenance.person(author, note=note, **extra)
            return self._store_mask(image_id, MaskKind.HUMAN, data, provenance, foreground, source)

    def write_prediction(self, image_id: str, mask: Any, *, model: str, prompt: str | None = None,
                         round: int | None = None) -> MaskRecord:  # fmt: skip
        """Store a model's mask as the image's latest prediction (never touches the human label).

        ``model`` is the sha256 of weights registered with :meth:`add_model`; a prompt is also recorded in
        the image's prompt list.
        """
        return self._write_model_mask(MaskKind.PREDICTION, image_id, mask, model, prompt, round)

    def write_pseudo_label(self, image_id: str, mask: Any, *, model: str, prompt: str | None = None,
                           round: int | None = None) -> MaskRecord:  # fmt: skip
        """Store a training round's pseudo-label of an image (never touches the human label)."""
        return self._write_model_mask(MaskKind.PSEUDO_LABEL, image_id, mask, model, prompt, round)

    def _write_model_mask(self, kind: MaskKind, image_id: str, mask: Any, model: str,
                          prompt: str | None, round: int | None) -> MaskRecord:  # fmt: skip
        with self.transaction():
            self._require_model(model)
            rec = self.image(image_id)
            data = normalize_mask(mask, rec.plane_shape)[0]
            provenance = Provenance.from_model(model, prompt=prompt, round=round)
            out = self._store_mask(image_id, kind, data, provenance)
            if prompt:
                self._append_prompt(image_id, prompt, provenance.author)
            return out

    def _store_mask(self, image_id: str, kind: MaskKind, data: np.ndarray, provenance: Provenance,
                    foreground: int | None = None, source_dtype: str | None = None) -> MaskRecord:  # fmt: skip
        if (kind is MaskKind.HUMAN) != (provenance.author_kind == "person"):
            raise ProjectError(f"a {provenance.author_kind} cannot write the {kind.value} mask")
        entry = self._entry(image_id)
        array = self._write_array(data, kind.value)
        record = MaskRecord(kind, array, data.dtype.name, foreground, provenance, source_dtype)
        old = entry["masks"].get(kind.value)
        if old and kind is MaskKind.HUMAN:
            entry["human_history"].append(old)  # nothing a person drew is deleted
        elif old:
            self._m["trash"][old["array"]] = time.time()
        entry["masks"][kind.value] = record.to_dict()
        self._dirty = True
        return record
