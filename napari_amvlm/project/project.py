"""The :class:`Project`: an annotation project's masks on top of its records: the three mask slots of each
image, the guard that keeps the human label for people, and mask import/export.

**Human labels.** Only :meth:`Project.mark_corrected` (and :meth:`Project.import_masks`, which calls it)
writes the human slot, and it requires a person as author. Model writers (:meth:`Project.write_prediction`,
:meth:`Project.write_pseudo_label`, :meth:`Project.record_round`) have no way to address that slot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from . import transfer
from .arrays import Array
from .catalog import ProjectCatalog
from .files import normalize_mask
from .records import MaskKind, MaskRecord, ProjectError, Provenance


def changed_fraction(before: np.ndarray, after: np.ndarray) -> float:
    """Share of pixels whose foreground/background differs between two masks of one shape: |before XOR after| /
    area (label values other than 0 all count as foreground)."""
    a, b = np.asarray(before) != 0, np.asarray(after) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} and {b.shape}")
    return float(np.count_nonzero(a ^ b)) / max(a.size, 1)


class Project(ProjectCatalog):
    """An annotation project folder. Create with :meth:`create`, open with :meth:`open`.

    Every change is one transaction (methods open one themselves; group many with :meth:`transaction`):
    it takes the writer lock, picks up commits made by other processes, and commits atomically at the end.
    Arrays are returned as lazy, read-only zarr arrays: slicing reads only the chunks needed.
    """

    def read_mask(self, image_id: str, kind: MaskKind | str) -> Array | None:
        """An image's mask of ``kind`` ("human", "prediction", "pseudo_label") as a lazy array, or None."""
        rec = self.mask_record(image_id, kind)
        return self._open_array(rec.array) if rec else None

    def read_mask_record(self, record: MaskRecord) -> Array:
        """The array of any mask record, e.g. an older human label from :meth:`human_history`."""
        return self._open_array(record.array)

    def mark_corrected(self, image_id: str, mask: Any = None, *, author: str, note: str = "",
                       started_from: Any = None, source: dict[str, Any] | None = None) -> MaskRecord:  # fmt: skip
        """Store ``mask`` as the human label of an image, written by the person ``author``.

        The only way to write a human label. ``mask=None`` accepts the current prediction as it is. The
        previous human label, if any, is kept in :meth:`human_history`. The label's provenance records how much
        of the latest prediction the person changed (``changed``: the share of pixels whose foreground/background
        differs), the annotation loop's edit effort; ``started_from`` is the mask the person was shown instead,
        when that was not the latest prediction (an earlier prompt's mask, an earlier label), and ``source`` what
        made it (``prompt``, ``model``, ``round``, ``sides``).
        """
        with self.transaction():
            rec = self.image(image_id)
            extra: dict[str, Any] = dict(source or {})
            pred = self.mask_record(image_id, MaskKind.PREDICTION)
            predicted = np.asarray(self._open_array(pred.array)[...]) if pred is not None else None
            if mask is None:
                if predicted is None:
                    raise ProjectError(f"{image_id} has no prediction to accept; pass the corrected mask")
                data, foreground, dtype = predicted, None, None
                p = pred.provenance
                extra = {"prompt": p.prompt, "model": p.model, "round": p.round, "sides": p.sides}
                note, started_from = note or "accepted the prediction unchanged", None
            else:
                data, foreground, dtype = normalize_mask(mask, rec.plane_shape)
            shown = predicted if started_from is None else np.asarray(started_from)
            if shown is not None:
                extra["changed"] = changed_fraction(shown, data)
            provenance = Provenance.person(author, note=note, **extra)
            return self._store_mask(image_id, MaskKind.HUMAN, data, provenance, foreground, dtype)

    def write_prediction(self, image_id: str, mask: Any, *, model: str, prompt: str | None = None,
                         round: int | None = None, sides: str = "image") -> MaskRecord:  # fmt: skip
        """Store a model's mask as the image's latest prediction (never touches the human label).

        ``model`` is the sha256 of weights registered with :meth:`add_model`; a prompt is also recorded in
        the image's prompt list, with ``sides``, what left/right in it mean ("image" or "patient").
        """
        return self._write_model_mask(MaskKind.PREDICTION, image_id, mask, model, prompt, round, sides)

    def write_pseudo_label(self, image_id: str, mask: Any, *, model: str, prompt: str | None = None,
                           round: int | None = None) -> MaskRecord:  # fmt: skip
        """Store a training round's pseudo-label of an image (never touches the human label)."""
        return self._write_model_mask(MaskKind.PSEUDO_LABEL, image_id, mask, model, prompt, round)

    def _write_model_mask(self, kind: MaskKind, image_id: str, mask: Any, model: str,
                          prompt: str | None, round: int | None, sides: str = "image") -> MaskRecord:  # fmt: skip
        with self.transaction():
            self._require_model(model)
            rec = self.image(image_id)
            data = normalize_mask(mask, rec.plane_shape)[0]
            provenance = Provenance.from_model(model, prompt=prompt, round=round, sides=sides if prompt else None)
            out = self._store_mask(image_id, kind, data, provenance)
            if prompt:
                self._append_prompt(image_id, prompt, provenance.author, sides)
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

    # ----------------------------------------------------------------------------- import / export
    def export_masks(self, out_dir: str | os.PathLike, *, kind: MaskKind | str = MaskKind.HUMAN,
                     fmt: str = "png", prefix: str = "", foreground: int | None = None,
                     overwrite: bool = False) -> list[Path]:  # fmt: skip
        """Write every mask of ``kind`` as ``<out_dir>/<prefix><image name>.<fmt>`` (png or tif).

        Binary masks get their recorded foreground value back (e.g. 255 for an imported {0, 255} PNG; 255
        when none is recorded) unless ``foreground`` forces one; label masks keep their values.
        """
        return transfer.export_masks(self, Path(out_dir), MaskKind(kind), fmt, prefix, foreground, overwrite)

    def import_masks(self, masks: str | os.PathLike | Iterable[str | os.PathLike], *, author: str,
                     prefix: str | None = None) -> transfer.MaskImport:  # fmt: skip
        """Import mask files (or a folder of them) as human labels by ``author``, matched by image name.

        ``mask_covid_1.png`` matches the image named ``covid_1`` (prefixes "mask_"/"mask-" and suffixes
        "_mask"/"_label(s)" are stripped, or exactly ``prefix``); a 3D mask matches a stack's slices. All or
        nothing: a mask of the wrong shape aborts the whole import.
        """
        with self.transaction():
            return transfer.import_masks(self, masks, author, prefix)
