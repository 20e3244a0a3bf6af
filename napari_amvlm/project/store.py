"""The transactional core of an annotation project: the manifest, the writer lock, atomic commits, crash
recovery and the zarr arrays. :class:`napari_amvlm.storage.Project` adds the records on top (images, masks,
prompts); the commit protocol is described there."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ._project_catalog import ProjectCatalog
from ._project_io import fsync_path, fsync_tree, locked, write_json_atomic
from ._project_records import (
    CorruptProjectError,
    ImageRecord,
    NotAProjectError,
    ProjectError,
    ProjectVersionError,
    utc_now,
)

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations are never evaluated at run time

MANIFEST_NAME = "amvlm-project.json"
FORMAT_NAME = "napari-amvlm-project"
FORMAT_VERSION = 1
ARRAYS_DIR = "arrays"
LOCK_NAME = ".lock"
CHUNK = 512  # chunk side in pixels: a 4096x4096 image is 64 chunks, each read only when needed
_ZARR_KW = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}


def is_project(path: str | os.PathLike) -> bool:
    """Cheap check (no validation): does ``path`` (a folder or its manifest) look like a project?"""
    path = Path(path)
    manifest = path if path.name == MANIFEST_NAME else path / MANIFEST_NAME
    try:
        with open(manifest, encoding="utf-8") as f:
            return json.load(f).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def _read_manifest(root: Path) -> dict[str, Any]:
    """Read and check the manifest of ``root``; raises a :class:`ProjectError` subclass, writes nothing."""
    if not root.exists():
        raise FileNotFoundError(f"no such project folder: {root}")
    manifest = root / MANIFEST_NAME
    if not root.is_dir() or not manifest.is_file():
        raise NotAProjectError(f"{root} is not an annotation project (no {MANIFEST_NAME})")
    try:
        m = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CorruptProjectError(f"{manifest} cannot be read as JSON: {err}") from err
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise NotAProjectError(f"{root} is not an annotation project ({MANIFEST_NAME} is not ours)")
    version = m.get("format_version")
    if not isinstance(version, int):
        raise CorruptProjectError(f"{manifest} has no valid format_version")
    if version > FORMAT_VERSION:
        raise ProjectVersionError(
            f"{root} uses project format {version}, newer than the {FORMAT_VERSION} this napari-amvlm reads; "
            "upgrade napari-amvlm to open it"
        )
    for key in ("images", "models", "rounds", "trash"):
        m.setdefault(key, [] if key == "rounds" else {})
    return m


def _array_meta(path: Path) -> tuple[tuple[int, ...], str]:
    """(shape, dtype) of a zarr array from its metadata file alone (format 2 or 3), without zarr."""
    for meta_name, dtype_key in ((".zarray", "dtype"), ("zarr.json", "data_type")):
        meta = path / meta_name
        if meta.is_file():
            d = json.loads(meta.read_text(encoding="utf-8"))
            return tuple(d["shape"]), np.dtype(d[dtype_key]).name
    raise CorruptProjectError(f"the array {path.name} named in the manifest is missing from {path.parent}")


class ProjectStore(ProjectCatalog):
    """A project folder's manifest and arrays. Every change is one transaction: it takes the writer lock,
    picks up commits made by other processes, and commits atomically at the end (or leaves no trace)."""

    trash_grace_s: float = 300.0  # seconds a superseded prediction/pseudo-label array is kept before deletion

    def __init__(self, root: Path, manifest: dict[str, Any], writable: bool) -> None:
        self.root = root
        self.writable = writable
        self._rlock = threading.RLock()
        self._depth = 0
        self._dirty = False
        self._new_arrays: list[str] = []
        self._swept = False  # orphans of crashed writers are removed by this object's first transaction
        self._set_manifest(manifest)

    # ----------------------------------------------------------------------------------- create / open
    @classmethod
    def create(cls, path: str | os.PathLike, name: str | None = None) -> Self:
        """Create an empty project in ``path`` (a new or empty folder)."""
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ProjectError(f"{root} already exists and is not an empty folder")
        (root / ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
        (root / LOCK_NAME).touch()
        now = utc_now()
        manifest = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "generation": 0,
            "name": name or root.resolve().name, "created": now, "updated": now,
            "images": {}, "models": {}, "rounds": [], "trash": {},
        }  # fmt: skip
        write_json_atomic(root / MANIFEST_NAME, manifest)
        return cls(root, manifest, writable=True)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r+", validate: bool = True) -> Self:
        """Open a project folder (or its manifest file). ``mode`` is "r" (read only) or "r+".

        Raises :class:`NotAProjectError`, :class:`ProjectVersionError` or (``validate``: arrays missing or of
        the wrong shape) :class:`CorruptProjectError`. Opening never writes anything.
        """
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', not {mode!r}")
        root = Path(path)
        root = root.parent if root.name == MANIFEST_NAME else root
        project = cls(root, _read_manifest(root), writable=mode == "r+")
        if validate:
            project.validate()
        return project

    def validate(self) -> None:
        """Check that every array the manifest names exists with the recorded shape and dtype."""
        for image_id, entry in self._m["images"].items():
            rec = ImageRecord.from_dict(entry)
            self._check_array(rec.array, rec.shape, rec.dtype, f"image {image_id}")
            for mask in self._mask_dicts(entry):
                what = f"{mask['kind']} mask of {image_id}"
                self._check_array(mask["array"], rec.plane_shape, mask["dtype"], what)

    def _check_array(self, name: str, shape: tuple[int, ...], dtype: str, what: str) -> None:
        found_shape, found_dtype = _array_meta(self.root / ARRAYS_DIR / name)
        if found_shape != tuple(shape) or found_dtype != dtype:
            raise CorruptProjectError(
                f"{self.root}: the {what} is stored as {found_dtype}{list(found_shape)} but the manifest "
                f"says {dtype}{list(shape)}"
            )

    @staticmethod
    def _mask_dicts(entry: dict[str, Any]) -> list[dict[str, Any]]:
        return [*entry["masks"].values(), *entry["human_history"]]

    def _set_manifest(self, manifest: dict[str, Any]) -> None:
        self._m = manifest
        self._by_sha = {e["sha256"]: i for i, e in manifest["images"].items()}
        self._names = {e["name"] for e in manifest["images"].values()}
        self._stat = self._manifest_stat()

    def _manifest_stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.root / MANIFEST_NAME)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Re-read the manifest if another process committed since; returns True when it did."""
        with self._rlock:
            if self._depth or self._manifest_stat() == self._stat:
                return False
            self._set_manifest(_read_manifest(self.root))
            return True

    # ---------------------------------------------------------------------------------- transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Self]:
        """Group changes into one atomic commit (re-entrant). On an exception nothing is committed."""
        if not self.writable:
            raise ProjectError(f"{self.root} was opened read-only")
        with self._rlock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            with locked(self.root / LOCK_NAME) as have_lock:
                self.refresh()
                self._depth, self._dirty, self._new_arrays = 1, False, []
                try:
                    yield self
                    self._depth = 0
                    if self._dirty:
                        self._commit()
                except BaseException:
                    self._depth = 0
                    self._abort()
                    raise
                if have_lock and not self._swept:
                    self._remove_orphans()

    def _abort(self) -> None:
        """Go back to the committed state on disk and delete the arrays it does not name."""
        self._set_manifest(_read_manifest(self.root))
        keep = self._referenced_arrays()
        for name in self._new_arrays:
            if name not in keep:
                shutil.rmtree(self.root / ARRAYS_DIR / name, ignore_errors=True)
        self._new_arrays, self._dirty = [], False

    def _commit(self) -> None:
        arrays = self.root / ARRAYS_DIR
        for name in self._new_arrays:
            fsync_tree(arrays / name)
        fsync_path(arrays)
        now = time.time()
        expired = [a for a, t in self._m["trash"].items() if now - t >= self.trash_grace_s]
        for a in expired:
            del self._m["trash"][a]
        self._m["generation"] += 1
        self._m["updated"] = utc_now()
        write_json_atomic(self.root / MANIFEST_NAME, self._m)  # the commit point
        self._new_arrays, self._dirty = [], False
        self._stat = self._manifest_stat()
        for a in expired:
            shutil.rmtree(arrays / a, ignore_errors=True)

    def _referenced_arrays(self) -> set[str]:
        names = set(self._m["trash"])
        for entry in self._m["images"].values():
            names.add(entry["array"])
            names.update(m["array"] for m in self._mask_dicts(entry))
        return names

    def _remove_orphans(self) -> None:
        """Delete arrays and temporary files that no commit names (left by a writer that died)."""
        self._swept = True
        keep = self._referenced_arrays()
        for p in (self.root / ARRAYS_DIR).iterdir():
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        for p in self.root.glob(".*.tmp*"):  # temporary files of atomic writes that never completed
            p.unlink(missing_ok=True)

    def compact(self) -> None:
        """Delete superseded arrays now, without waiting for ``trash_grace_s``, and any left by crashes."""
        self._swept = False
        with self.transaction():
            self._dirty = bool(self._m["trash"])
            for a in self._m["trash"]:
                self._m["trash"][a] = 0.0

    # ------------------------------------------------------------------------------------- arrays
    def _write_array(self, data: np.ndarray, kind: str) -> str:
        name = f"{kind}-{uuid.uuid4().hex}"
        chunks = tuple(min(CHUNK, s) for s in data.shape[:2]) + tuple(data.shape[2:])
        self._new_arrays.append(name)
        z = zarr.open_array(
            str(self.root / ARRAYS_DIR / name), mode="w-", shape=data.shape, chunks=chunks,
            dtype=data.dtype, **_ZARR_KW,
        )  # fmt: skip
        z[...] = data
        return name

    def _open_array(self, name: str) -> zarr.Array:
        return zarr.open_array(str(self.root / ARRAYS_DIR / name), mode="r")
