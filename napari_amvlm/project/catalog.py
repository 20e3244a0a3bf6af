"""The records of an annotation project on top of its transactional core: images (adding and reading them),
statuses, prompts, model versions and training rounds. No zarr here (the pixels come from :mod:`.arrays`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..io.dicom import is_series_folder
from . import transfer
from .arrays import Array
from .files import ImagePlane, list_image_files, read_image_file, sha256_pixels, slug, split_planes
from .records import (
    ImageRecord,
    MaskKind,
    MaskRecord,
    ModelRecord,
    ProjectError,
    PromptRecord,
    RoundRecord,
    Status,
    utc_now,
)
from .store import ProjectStore


class ProjectCatalog(ProjectStore):
    """Record-level operations of a project (see :class:`napari_amvlm.project.Project`)."""

    batch_size: int = 256  # images per commit when adding a folder

    # ------------------------------------------------------------------------------------- images
    @property
    def name(self) -> str:
        return self._m["name"]

    @property
    def generation(self) -> int:
        """Number of commits so far."""
        return self._m["generation"]

    def __len__(self) -> int:
        return len(self._m["images"])

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._m["images"]

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, images={len(self)}, generation={self.generation})"

    def _entry(self, image_id: str) -> dict[str, Any]:
        try:
            return self._m["images"][image_id]
        except KeyError:
            raise ProjectError(f"no image {image_id!r} in project {self.root}") from None

    def image(self, image_id: str) -> ImageRecord:
        """The record of one image."""
        return ImageRecord.from_dict(self._entry(image_id))

    def images(self, status: Status | str | None = None) -> list[ImageRecord]:
        """Records of all images (in the order added), optionally only those with ``status``."""
        with self._rlock:
            return [self.image(i) for i in self.image_ids(status)]

    def image_ids(self, status: Status | str | None = None) -> list[str]:
        """Ids of all images in the order added, optionally only those with ``status``."""
        with self._rlock:
            ids = list(self._m["images"])
            if status is None:
                return ids
            return [i for i in ids if self.status(i) is Status(status)]

    def find_by_name(self, name: str) -> str | None:
        """The id of the image called ``name`` (source file stem, "_z0003" for slices), or None."""
        with self._rlock:
            return next((i for i, e in self._m["images"].items() if e["name"] == name), None)

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

    def add_plane(self, plane: ImagePlane) -> str:
        """Add one plane (e.g. a slice a viewer read from a DICOM or NIfTI file, with that file's sha256 and the
        slice's place in it); returns its id (the existing one when its pixels are already in the project)."""
        with self.transaction():
            return self._add_plane(plane)

    def add_images(self, items: Iterable[str | os.PathLike | np.ndarray] | str | os.PathLike, *,
                   recursive: bool = False, rgb: bool | None = None) -> list[str]:  # fmt: skip
        """Add files, folders (their image files, sorted) and arrays; commits every ``batch_size`` items."""
        if isinstance(items, (str, os.PathLike)):
            items = [items]
        expanded: list[Any] = []
        for item in items:
            is_dir = isinstance(item, (str, os.PathLike)) and Path(item).is_dir()
            series = is_dir and is_series_folder(item)  # a DICOM series is one image (a stack of slices)
            expanded.extend(list_image_files(item, recursive) if is_dir and not series else [item])
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

    def read_image(self, image_id: str) -> Array:
        """The pixels of an image as a lazy read-only zarr array ((H, W) or (H, W, C))."""
        return self._open_array(self._entry(image_id)["array"])

    # -------------------------------------------------------------------------------------- masks
    def status(self, image_id: str) -> Status:
        """corrected (a human label exists) > predicted (a prediction exists) > unlabeled."""
        masks = self._entry(image_id)["masks"]
        if MaskKind.HUMAN.value in masks:
            return Status.CORRECTED
        return Status.PREDICTED if MaskKind.PREDICTION.value in masks else Status.UNLABELED

    def counts(self) -> dict[Status, int]:
        """Number of images per status."""
        with self._rlock:
            out = dict.fromkeys(Status, 0)
            for image_id in self._m["images"]:
                out[self.status(image_id)] += 1
            return out

    def mask_record(self, image_id: str, kind: MaskKind | str) -> MaskRecord | None:
        """The record (provenance included) of an image's mask of ``kind``, or None."""
        d = self._entry(image_id)["masks"].get(MaskKind(kind).value)
        return MaskRecord.from_dict(d) if d else None

    def human_history(self, image_id: str) -> list[MaskRecord]:
        """Earlier human labels of an image, oldest first (the current one is ``mask_record(.., "human")``)."""
        return [MaskRecord.from_dict(d) for d in self._entry(image_id)["human_history"]]

    # ------------------------------------------------------------------------------------ prompts
    def add_prompt(self, image_id: str, text: str, *, author: str, sides: str = "image") -> PromptRecord:
        """Record a prompt typed for an image; ``sides`` says what left/right in it mean ("image" or "patient")."""
        with self.transaction():
            return self._append_prompt(image_id, text, author, sides)

    def _append_prompt(self, image_id: str, text: str, author: str, sides: str = "image") -> PromptRecord:
        if not text.strip():
            raise ValueError("a prompt cannot be empty")
        if sides not in ("image", "patient"):
            raise ValueError(f"sides must be 'image' or 'patient', not {sides!r}")
        record = PromptRecord(text=text, author=author, sides=sides)
        self._entry(image_id)["prompts"].append(vars(record).copy())
        self._dirty = True
        return record

    def prompts(self, image_id: str) -> list[PromptRecord]:
        """Prompts typed for an image, oldest first."""
        return [PromptRecord(**d) for d in self._entry(image_id)["prompts"]]

    # ------------------------------------------------------------------------------ models, rounds
    def add_model(self, weights: str | os.PathLike, name: str | None = None) -> ModelRecord:
        """Register a safetensors weights file; its sha256 is the model's id. Idempotent."""
        record = transfer.describe_weights(Path(weights), name)
        with self.transaction():
            if record.sha256 not in self._m["models"]:
                self._m["models"][record.sha256] = vars(record).copy()
                self._dirty = True
            return ModelRecord(**self._m["models"][record.sha256])

    def models(self) -> list[ModelRecord]:
        """Registered model versions, in the order registered."""
        return [ModelRecord(**d) for d in self._m["models"].values()]

    def _require_model(self, model: str) -> None:
        if model not in self._m["models"]:
            raise ProjectError(f"unknown model {model[:16]!r}: register its weights with add_model first")

    def record_round(self, *, model: str, settings: dict[str, Any], seed: int, metrics: dict[str, float],
                     base_model: str | None = None, images: dict[str, list[str]] | None = None,
                     installed: bool = True) -> RoundRecord:  # fmt: skip
        """Record a finished training round that produced the registered weights ``model`` (``installed``: they
        were put in use)."""
        with self.transaction():
            self._require_model(model)
            if base_model is not None:
                self._require_model(base_model)
            record = RoundRecord(
                index=len(self._m["rounds"]) + 1, model=model, base_model=base_model, settings=dict(settings),
                seed=int(seed), metrics={k: float(v) for k, v in metrics.items()}, time=utc_now(),
                images={k: list(v) for k, v in (images or {}).items()}, installed=bool(installed),
            )  # fmt: skip
            try:
                d = json.loads(json.dumps(vars(record)))
            except (TypeError, ValueError) as err:
                raise ValueError(f"round settings must be JSON-serialisable: {err}") from err
            self._m["rounds"].append(d)
            self._dirty = True
            return RoundRecord(**d)  # as it reads back from disk

    def rounds(self) -> list[RoundRecord]:
        """Training rounds, oldest first."""
        return [RoundRecord(**d) for d in self._m["rounds"]]
