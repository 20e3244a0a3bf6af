"""Moving data in and out of an annotation project: mask export/import and weight files.

Works through a project's public methods only (:class:`MaskTarget`: no zarr here, and no import of the
:class:`~napari_amvlm.project.Project` class that calls these functions).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..io import read_pixels, write_mask_file
from .files import export_values, list_mask_files, mask_stem, sha256_file
from .names import check_file_name
from .records import ImageRecord, MaskKind, MaskRecord, ModelRecord, utc_now

DEFAULT_FOREGROUND = 255  # value of a binary mask's foreground on export when the mask records none


class MaskTarget(Protocol):
    """What mask import and export need of a :class:`~napari_amvlm.project.Project`."""

    def images(self) -> list[ImageRecord]: ...

    def mask_record(self, image_id: str, kind: MaskKind | str) -> MaskRecord | None: ...

    def read_mask_record(self, record: MaskRecord) -> Any: ...

    def mark_corrected(self, image_id: str, mask: Any = None, *, author: str,
                       note: str = "") -> MaskRecord: ...


class FilesExist(ValueError):
    """Mask files of an export are already in its folder (nothing was written)."""

    def __init__(self, clashes: list[Path]) -> None:
        super().__init__(f"{clashes[0]} exists ({len(clashes)} files would be overwritten; use overwrite)")
        self.clashes = clashes


@dataclass
class MaskImport:
    """What :meth:`Project.import_masks` did."""

    imported: dict[str, Path] = field(default_factory=dict)  # image id -> mask file it now holds
    unmatched: list[Path] = field(default_factory=list)  # mask files that name no image of the project


def describe_weights(path: Path, name: str | None = None) -> ModelRecord:
    """Check that ``path`` is a safetensors file (header only) and describe it by its sha256."""
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        ok = 0 < size <= path.stat().st_size - 8
        try:
            ok = ok and isinstance(json.loads(f.read(size) if ok else b""), dict)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"{path} is not a safetensors file")
    return ModelRecord(
        sha256=sha256_file(path), name=name or path.parent.name or path.stem, source=str(path.resolve()),
        size=path.stat().st_size, added=utc_now(),
    )  # fmt: skip


def _normalize_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    fmt = "tif" if fmt == "tiff" else fmt
    if fmt not in ("png", "tif"):
        raise ValueError(f"unsupported mask format {fmt!r}: use png or tif")
    return fmt


def export_masks(project: MaskTarget, out_dir: Path, kind: MaskKind, fmt: str, prefix: str,
                 foreground: int | None, overwrite: bool) -> list[Path]:  # fmt: skip
    """See :meth:`Project.export_masks`. Refuses to overwrite files unless ``overwrite``, and any file name that
    is not a plain name inside ``out_dir`` or that two masks would share (letter case aside), before writing."""
    fmt = _normalize_format(fmt)
    jobs = [(rec, m) for rec in project.images() if (m := project.mask_record(rec.id, kind))]
    names = [check_file_name(f"{prefix}{rec.name}.{fmt}", "the mask file name") for rec, _ in jobs]
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen:
            raise ValueError(f"two masks would be written to one file: {seen[name.casefold()]!r} and {name!r}")
        seen[name.casefold()] = name
    targets = [out_dir / name for name in names]
    clashes = [t for t in targets if t.exists()]
    if clashes and not overwrite:
        raise FilesExist(clashes)
    out_dir.mkdir(parents=True, exist_ok=True)
    for (_, mask), target in zip(jobs, targets):
        value = foreground if foreground is not None else mask.foreground
        data = np.asarray(project.read_mask_record(mask)[...])
        value = DEFAULT_FOREGROUND if value is None else value
        write_mask_file(target, export_values(data, value, mask.source_dtype))
    return targets


def read_mask_file(path: Path) -> np.ndarray:
    """Read a mask image; a colour mask whose channels are equal becomes one channel."""
    mask = read_pixels(path)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4) and all(
        np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, 3)
    ):
        mask = mask[..., 0]
    return mask


def _expand(masks: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    items = [masks] if isinstance(masks, (str, os.PathLike)) else list(masks)
    paths: list[Path] = []
    for item in map(Path, items):
        if not item.exists():
            raise FileNotFoundError(f"no such mask file or folder: {item}")
        paths.extend(list_mask_files(item) if item.is_dir() else [item])
    return paths


def import_masks(project: MaskTarget, masks: str | os.PathLike | Iterable[str | os.PathLike], author: str,
                 prefix: str | None) -> MaskImport:  # fmt: skip
    """See :meth:`Project.import_masks` (runs inside the caller's transaction)."""
    by_name = {rec.name: rec.id for rec in project.images()}
    report = MaskImport()
    for path in _expand(masks):
        stem = mask_stem(path, prefix)
        mask = read_mask_file(path)
        if stem in by_name:
            targets = [(by_name[stem], mask)]
        elif mask.ndim == 3 and all(f"{stem}_z{i:04d}" in by_name for i in range(mask.shape[0])):
            targets = [(by_name[f"{stem}_z{i:04d}"], mask[i]) for i in range(mask.shape[0])]
        else:
            report.unmatched.append(path)
            continue
        for image_id, plane in targets:
            try:
                project.mark_corrected(image_id, plane, author=author, note=f"imported from {path.name}")
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from err
            report.imported[image_id] = path
    return report
