"""Masks written beside the clinical files they belong to: a NIfTI mask with its volume's affine, a DICOM-SEG that
references its DICOM film or series (:mod:`napari_amvlm.io`).

The person names the source file or folder; the project's images that were added from it are found by the sha256
of its bytes, recorded when they were added. A path recorded in a project (which may come from someone else) is
never opened: it is data, not a place to read from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import check_mask_format, read_scan, write_mask
from .files import source_digest
from .records import MaskKind
from .transfer import FilesExist

FORMATS = ("nii.gz", "nii", "dcm")
OWN_FORMAT = {"nifti": "nii.gz", "dicom": "dcm"}  # the mask format written beside each kind of source


def export_beside(project: Any, out_dir: Path, sources: list[Path], kind: MaskKind, fmt: str | None, prefix: str,
                  overwrite: bool) -> list[Path]:  # fmt: skip
    """For each source, one mask file of all its planes (planes without a mask of ``kind`` are empty), written as
    ``<out_dir>/<prefix><source name>.<fmt>``; ``fmt`` None: each source's own (nii.gz beside NIfTI, dcm, a
    DICOM-SEG, beside DICOM). Checks every source before writing anything."""
    fmt = None if fmt is None else fmt.lower().lstrip(".")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r} for masks beside their source: use {', '.join(FORMATS)}")
    jobs = [_job(project, Path(s), kind, out_dir, fmt, prefix) for s in sources]
    clashes = [target for *_, target in jobs if target.exists()]
    if clashes and not overwrite:
        raise FilesExist(clashes)
    if len({target for *_, target in jobs}) < len(jobs):
        raise ValueError("two sources have the same name: export them to different folders")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_mask(target, stack if scan.planes > 1 else stack[0], scan, label, corrected=kind == MaskKind.HUMAN)
            for scan, stack, label, target in jobs]


def _job(project: Any, source: Path, kind: MaskKind, out_dir: Path, fmt: str | None, prefix: str) -> tuple:
    from ..inference.views import patient_prompt  # (here: the inference package loads torch)

    if not source.exists():
        raise FileNotFoundError(f"no such source file or folder: {source}")
    digest = source_digest(source)
    records = [r for r in project.images() if r.file_sha256 == digest]
    if not records:
        raise ValueError(f"{source}: no image of the project was added from this file (or it changed since)")
    scan = read_scan(source)
    fmt = fmt or OWN_FORMAT.get(scan.kind)
    if fmt is None:
        raise ValueError(f"{source} is neither DICOM nor NIfTI: export its mask as PNG or TIFF")
    target = out_dir / f"{prefix}{_stem(source)}.{fmt}"
    check_mask_format(target, scan)
    stack = np.zeros((scan.planes, *scan.plane_shape), np.uint8)
    found, label = 0, ""
    for rec in records:
        mask = project.mask_record(rec.id, kind)
        if mask is None:
            continue
        if tuple(rec.plane_shape) != scan.plane_shape or not 0 <= (rec.slice or 0) < scan.planes:
            raise ValueError(f"{source}: the project's image {rec.name} does not fit its planes")
        stack[rec.slice or 0] = np.asarray(project.read_mask_record(mask)[...]) != 0
        found += 1
        prompts = project.prompts(rec.id)
        label = patient_prompt(prompts[-1].text, prompts[-1].sides, scan.orientation)[0] if prompts else label
    if not found:
        raise ValueError(f"{source}: none of its {len(records)} images has a {kind.value} mask")
    return scan, stack, label or kind.value, target


def _stem(source: Path) -> str:
    name = os.path.basename(os.path.normpath(str(source)))
    for ext in (".nii.gz", ".nii", ".dcm", ".dicom"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name
