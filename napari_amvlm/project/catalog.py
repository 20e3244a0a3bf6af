"""The zarr-free half of :class:`napari_amvlm.storage.Project`: reading and editing the manifest's records
(images, statuses, prompts, model versions, training rounds) and mask import/export.

:class:`ProjectCatalog` is a mixin; ``storage.Project`` supplies the manifest dict ``_m``, the lock, the
transactions and the array access (the zarr parts).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from . import _project_transfer
from ._project_records import (
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


class ProjectCatalog:
    """Record-level operations of a project (see :class:`napari_amvlm.storage.Project`)."""

    root: Path
    _m: dict[str, Any]
    _rlock: threading.RLock
    _dirty: bool

    def transaction(self) -> AbstractContextManager[Any]:  # pragma: no cover - provided by Project
        raise NotImplementedError

    def read_mask_record(self, record: MaskRecord) -> np.ndarray:  # pragma: no cover - provided by Project
        raise NotImplementedError

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
    def add_prompt(self, image_id: str, text: str, *, author: str) -> PromptRecord:
        """Record a prompt typed for an image."""
        with self.transaction():
            return self._append_prompt(image_id, text, author)

    def _append_prompt(self, image_id: str, text: str, author: str) -> PromptRecord:
        if not text.strip():
            raise ValueError("a prompt cannot be empty")
        record = PromptRecord(text=text, author=author)
        self._entry(image_id)["prompts"].append(vars(record).copy())
        self._dirty = True
        return record

    def prompts(self, image_id: str) -> list[PromptRecord]:
        """Prompts typed for an image, oldest first."""
        return [PromptRecord(**d) for d in self._entry(image_id)["prompts"]]

    # ------------------------------------------------------------------------------ models, rounds
    def add_model(self, weights: str | os.PathLike, name: str | None = None) -> ModelRecord:
        """Register a safetensors weights file; its sha256 is the model's id. Idempotent."""
        record = _project_transfer.describe_weights(Path(weights), name)
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
                     base_model: str | None = None,
                     images: dict[str, list[str]] | None = None) -> RoundRecord:  # fmt: skip
        """Record a finished training round that produced the registered weights ``model``."""
        with self.transaction():
            self._require_model(model)
            if base_model is not None:
                self._require_model(base_model)
            record = RoundRecord(
                index=len(self._m["rounds"]) + 1, model=model, base_model=base_model, settings=dict(settings),
                seed=int(seed), metrics={k: float(v) for k, v in metrics.items()}, time=utc_now(),
                images={k: list(v) for k, v in (images or {}).items()},
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

    # ----------------------------------------------------------------------------- import / export
    def export_masks(self, out_dir: str | os.PathLike, *, kind: MaskKind | str = MaskKind.HUMAN,
                     fmt: str = "png", prefix: str = "", foreground: int | None = None,
                     overwrite: bool = False) -> list[Path]:  # fmt: skip
        """Write every mask of ``kind`` as ``<out_dir>/<prefix><image name>.<fmt>`` (png or tif).

        Binary masks get their recorded foreground value back (e.g. 255 for an imported {0, 255} PNG; 255
        when none is recorded) unless ``foreground`` forces one; label masks keep their values.
        """
        return _project_transfer.export_masks(self, Path(out_dir), MaskKind(kind), fmt, prefix, foreground,
                                              overwrite)  # fmt: skip

    def import_masks(self, masks: str | os.PathLike | Iterable[str | os.PathLike], *, author: str,
                     prefix: str | None = None) -> _project_transfer.MaskImport:  # fmt: skip
        """Import mask files (or a folder of them) as human labels by ``author``, matched by image name.

        ``mask_covid_1.png`` matches the image named ``covid_1`` (prefixes "mask_"/"mask-" and suffixes
        "_mask"/"_label(s)" are stripped, or exactly ``prefix``); a 3D mask matches a stack's slices. All or
        nothing: a mask of the wrong shape aborts the whole import.
        """
        with self.transaction():
            return _project_transfer.import_masks(self, masks, author, prefix)
