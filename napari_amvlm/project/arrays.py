"""The pixel arrays of an annotation project: one zarr array (zarr format 2) per image or mask, in
``<project>/arrays/<name>/``, written once under a fresh name and never changed. The only module of
napari-amvlm that imports zarr."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import zarr

from .._atomic import fsync_path
from .records import CorruptProjectError

ARRAYS_DIR = "arrays"  # the folder of a project that holds its arrays
CHUNK = 512  # chunk side in pixels: a 4096x4096 image is 64 chunks, each read only when needed
_ZARR_KW = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}

Array = zarr.Array  # what readers get back: lazy, read-only; slicing reads only the chunks needed


def write_array(path: Path, data: np.ndarray) -> None:
    """Write ``data`` as a new array at ``path`` (which must not exist), chunked by ``CHUNK`` pixels."""
    chunks = tuple(min(CHUNK, s) for s in data.shape[:2]) + tuple(data.shape[2:])
    z = zarr.open_array(str(path), mode="w-", shape=data.shape, chunks=chunks, dtype=data.dtype, **_ZARR_KW)
    z[...] = data


def open_array(path: Path) -> Array:
    """The array at ``path``, opened lazily and read-only."""
    return zarr.open_array(str(path), mode="r")


def array_meta(path: Path) -> tuple[tuple[int, ...], str]:
    """(shape, dtype) of a zarr array from its metadata file alone (format 2 or 3), without zarr."""
    for meta_name, dtype_key in ((".zarray", "dtype"), ("zarr.json", "data_type")):
        meta = path / meta_name
        if meta.is_file():
            d = json.loads(meta.read_text(encoding="utf-8"))
            return tuple(d["shape"]), np.dtype(d[dtype_key]).name
    raise CorruptProjectError(f"the array {path.name} named in the manifest is missing from {path.parent}")


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file and directory under ``root`` (deepest first), then ``root`` itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            fsync_path(os.path.join(dirpath, f))
        fsync_path(dirpath)
