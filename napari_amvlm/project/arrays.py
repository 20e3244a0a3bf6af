"""The pixel arrays of an annotation project: one zarr array (zarr format 2) per image or mask, in
``<project>/arrays/<name>/``, written once under a fresh name and never changed. The only module of
napari-amvlm that imports zarr.

A project may come from anyone, so an array is checked before zarr opens it: its metadata against an allow-list
(numeric pixels, C order, no filter, no compressor but zstd or blosc: no codec that unpickles), its declared
shape and chunks against the limits of one image, and each chunk file's own header (the size it decompresses to)
against its chunk, so that reading an array allocates no more than the array declares. No file of an array may
be a symbolic link.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from .._atomic import fsync_path
from ..io.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from .records import CorruptProjectError

ARRAYS_DIR = "arrays"  # the folder of a project that holds its arrays
CHUNK = 512  # chunk side in pixels: a 4096x4096 image is 64 chunks, each read only when needed
MAX_CHUNK_BYTES = 16 << 20  # a chunk decodes into at most this (the store writes at most 512x512x4x8 = 8 MiB)
MAX_CHUNKS = 4096  # chunks of one array
MAX_METADATA_BYTES = 64 << 10  # .zarray / .zattrs
COMPRESSORS = ("zstd", "blosc")  # what zarr 3 (zstd) and zarr 2 (blosc) write by default; None is allowed too
_DTYPE = re.compile(r"[<>|]([ui][1248]|f[248])")

Array = zarr.Array  # what readers get back: lazy, read-only; slicing reads only the chunks needed


@dataclass(frozen=True)
class ArrayMeta:
    """What an array's ``.zarray`` declares, once checked."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    compressor: str | None

    @property
    def chunk_bytes(self) -> int:
        return math.prod(self.chunks) * self.dtype.itemsize


def write_array(path: Path, data: np.ndarray) -> None:
    """Write ``data`` as a new array at ``path`` (which must not exist), chunked by ``CHUNK`` pixels."""
    chunks = tuple(min(CHUNK, s) for s in data.shape[:2]) + tuple(data.shape[2:])
    z = zarr.open_array(str(path), mode="w-", shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=2)
    z[...] = data


def open_array(path: Path, meta: ArrayMeta | None = None) -> Array:
    """The array at ``path``, opened lazily and read-only, after :func:`check_array` (skipped when ``meta`` is
    the result of an earlier check)."""
    if meta is None:
        check_array(path)
    return zarr.open_array(str(path), mode="r", zarr_format=2)


def check_array(path: Path) -> ArrayMeta:
    """Check an array's metadata and every chunk file's header; raises :class:`CorruptProjectError`."""
    meta = array_meta(path)
    folder = os.fspath(path)  # (plain strings: this runs for every array when a project opens)
    for key in _chunk_keys(meta):
        _check_chunk(folder, key, meta)
    return meta


def _regular_file(path: str, limit: int, what: str) -> int | None:
    """Size of ``path`` if it is a plain file of at most ``limit`` bytes; None if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptProjectError(f"{path} is not a plain file (a {what} must not be a link or a device)")
    if st.st_size > limit:
        raise CorruptProjectError(f"{path} is {st.st_size:,} bytes, more than a {what} may have ({limit:,})")
    return st.st_size


def array_meta(path: Path) -> ArrayMeta:
    """The checked metadata of the array at ``path`` (zarr format 2), read without zarr."""
    name, folder = f"the array {path}", os.fspath(path)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise CorruptProjectError(f"{name} named in the manifest is missing") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CorruptProjectError(f"{path} is not a folder (an array must not be a link or a file)")
    if os.path.lexists(os.path.join(folder, "zarr.json")):
        raise CorruptProjectError(f"{name} is in zarr format 3; a project's arrays are in zarr format 2")
    zarray = os.path.join(folder, ".zarray")
    if _regular_file(zarray, MAX_METADATA_BYTES, "zarr metadata file") is None:
        raise CorruptProjectError(f"{name} has no .zarray metadata")
    _regular_file(os.path.join(folder, ".zattrs"), MAX_METADATA_BYTES, "zarr metadata file")
    try:
        with open(zarray, "rb") as f:
            d = json.loads(f.read())
    except (OSError, ValueError, RecursionError) as err:
        raise CorruptProjectError(f"{zarray} cannot be read as JSON: {err}") from err
    try:
        return _parse_meta(d)
    except ValueError as err:
        raise CorruptProjectError(f"{name} cannot be opened: {err}") from None


def _parse_meta(d: object) -> ArrayMeta:
    if not isinstance(d, dict) or d.get("zarr_format") != 2:
        raise ValueError("its .zarray is not zarr format 2 metadata")
    shape, chunks, dtype = d.get("shape"), d.get("chunks"), d.get("dtype")
    if not (_ints(shape) and _ints(chunks) and len(shape) == len(chunks) and len(shape) in (2, 3)):
        raise ValueError(f"shape {shape!r} and chunks {chunks!r} must be lists of 2 or 3 positive integers")
    if not isinstance(dtype, str) or not _DTYPE.fullmatch(dtype):
        raise ValueError(f"dtype {str(dtype)[:40]!r} is not a numeric pixel type")
    if d.get("order", "C") != "C" or d.get("filters") not in (None, []):
        raise ValueError("only C order and no filters are allowed")
    if d.get("dimension_separator", ".") != ".":
        raise ValueError("only '.' is allowed as dimension separator")
    if not isinstance(d.get("fill_value"), (int, float, type(None))) and d.get("fill_value") not in ("NaN",):
        raise ValueError(f"fill_value {str(d.get('fill_value'))[:40]!r} is not a number")
    comp = d.get("compressor")
    cid = comp.get("id") if isinstance(comp, dict) else comp
    if comp is not None and cid not in COMPRESSORS:
        raise ValueError(f"codec {str(cid)[:40]!r} is not allowed (only {', '.join(COMPRESSORS)} or none)")
    meta = ArrayMeta(tuple(shape), tuple(chunks), np.dtype(dtype), cid)
    n_chunks = math.prod(math.ceil(s / c) for s, c in zip(shape, chunks))
    if shape[0] * shape[1] > MAX_IMAGE_PIXELS or math.prod(shape) * meta.dtype.itemsize > MAX_IMAGE_BYTES:
        raise ValueError(f"its shape {list(shape)} is larger than one image may be ({MAX_IMAGE_PIXELS:,} pixels)")
    if any(c > s for c, s in zip(chunks, shape)) or meta.chunk_bytes > MAX_CHUNK_BYTES or n_chunks > MAX_CHUNKS:
        raise ValueError(f"its chunks {list(chunks)} are not chunks this store writes")
    return meta


def _ints(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)


def _chunk_keys(meta: ArrayMeta) -> list[str]:
    grid = [range(-(-s // c)) for s, c in zip(meta.shape, meta.chunks)]
    return [".".join(map(str, idx)) for idx in itertools.product(*grid)]


def _check_chunk(folder: str, key: str, meta: ArrayMeta) -> None:
    """A chunk file decodes into exactly one chunk: its header says so, and its size is in proportion."""
    n, path = meta.chunk_bytes, os.path.join(folder, key)
    size = _regular_file(path, n + n // 64 + 4096, "chunk of this array")
    if size is None:  # a missing chunk reads as the fill value
        return
    with open(path, "rb") as f:
        head = f.read(32)
    if meta.compressor == "zstd":
        declared = _zstd_content_size(head)
    elif meta.compressor == "blosc":
        declared = int.from_bytes(head[4:8], "little") if len(head) >= 16 else None
    else:
        declared = size
    if declared != n:
        raise CorruptProjectError(f"the chunk {key} of the array {folder} does not decode into one chunk of "
                                  f"{n:,} bytes (its header says {declared})")


def _zstd_content_size(head: bytes) -> int | None:
    """The content size a zstd frame header declares (None: absent, or not a zstd frame)."""
    if len(head) < 6 or head[:4] != b"\x28\xb5\x2f\xfd":
        return None
    fhd = head[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0 or len(head) < pos + size:
        return None
    value = int.from_bytes(head[pos : pos + size], "little")
    return value + 256 if size == 2 else value


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file and directory under ``root`` (deepest first), then ``root`` itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            fsync_path(os.path.join(dirpath, f))
        fsync_path(dirpath)
