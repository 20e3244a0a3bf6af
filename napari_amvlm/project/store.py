"""The transactional core of an annotation project: the folder, the writer lock, transactions, atomic
commits and crash recovery. :class:`.catalog.ProjectCatalog` adds the records on top (images, prompts, models,
rounds) and :class:`.project.Project` the masks; :mod:`napari_amvlm.project` describes the commit protocol.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._atomic import fsync_path
from .arrays import ARRAYS_DIR, Array, ArrayMeta, check_array, fsync_tree, open_array, write_array
from .manifest import MANIFEST_NAME, new_manifest, read_manifest, write_manifest
from .records import CorruptProjectError, ImageRecord, ProjectError, utc_now

try:  # POSIX advisory locks; released by the kernel when a process dies, even by SIGKILL
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations are never evaluated at run time

LOCK_NAME = ".lock"


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``lock_path`` (blocks); yields False where locks are unavailable. The
    lock file is created if missing, never through a symbolic link."""
    if fcntl is None:  # pragma: no cover
        yield False
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as err:
        raise ProjectError(f"cannot open the lock file {lock_path}: {err.strerror}") from None
    with open(fd, "r+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def check_layout(root: Path) -> None:
    """Refuse a project whose ``arrays`` folder or lock file is a symbolic link (or not a folder / plain file): a
    write or a deletion there would land outside the project."""
    for name, kind, what in ((ARRAYS_DIR, stat.S_ISDIR, "a folder"), (LOCK_NAME, stat.S_ISREG, "a plain file")):
        try:
            mode = os.lstat(root / name).st_mode
        except FileNotFoundError:
            if name == ARRAYS_DIR:
                raise CorruptProjectError(f"{root} has no {ARRAYS_DIR} folder") from None
            continue
        if not kind(mode):
            raise CorruptProjectError(f"{root / name} must be {what} inside the project, not a link or anything else")


class ProjectStore:
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
        self._checked: dict[str, ArrayMeta] = {}  # arrays whose files were checked (arrays never change)
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
        manifest = new_manifest(name or root.resolve().name)
        write_manifest(root / MANIFEST_NAME, manifest)
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
        project = cls(root, read_manifest(root), writable=mode == "r+")
        if validate:
            project.validate()
        return project

    def validate(self) -> None:
        """Check the folder's layout, and that every array the manifest names exists with the recorded shape and
        dtype, allowed metadata and chunk files that decode into their chunks (see :mod:`.arrays`)."""
        check_layout(self.root)
        for image_id, entry in self._m["images"].items():
            rec = ImageRecord.from_dict(entry)
            self._check_array(rec.array, rec.shape, rec.dtype, f"image {image_id}")
            for mask in self._mask_dicts(entry):
                what = f"{mask['kind']} mask of {image_id}"
                self._check_array(mask["array"], rec.plane_shape, mask["dtype"], what)

    def _check_array(self, name: str, shape: tuple[int, ...], dtype: str, what: str) -> None:
        meta = self._checked[name] = check_array(self.root / ARRAYS_DIR / name)  # (every chunk's header too)
        found_shape, found_dtype = meta.shape, meta.dtype.name
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
            self._set_manifest(read_manifest(self.root))
            return True

    # ---------------------------------------------------------------------------------- transactions
    @contextlib.contextmanager
    def reading(self, timeout: float | None = None) -> Iterator[bool]:
        """Read several records as one consistent view while another thread of this process may be writing:
        waits for that thread's transaction to end (at most ``timeout`` seconds), and holds off the next one
        until the block ends. Yields False, holding nothing, when the wait timed out. (Records read inside a
        transaction of the same thread need no such block.)"""
        got = self._rlock.acquire(timeout=-1 if timeout is None else timeout)
        try:
            yield got
        finally:
            if got:
                self._rlock.release()

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
            check_layout(self.root)  # before the lock file is opened or anything written
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
        self._set_manifest(read_manifest(self.root))
        keep = self._referenced_arrays()
        for name in self._new_arrays:
            if name not in keep:
                self._delete(self.root / ARRAYS_DIR / name)
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
        write_manifest(self.root / MANIFEST_NAME, self._m)  # the commit point
        self._new_arrays, self._dirty = [], False
        self._stat = self._manifest_stat()
        for a in expired:
            self._delete(arrays / a)

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
                self._delete(p)
        for p in self.root.glob(".*.tmp*"):  # temporary files of atomic writes that never completed
            p.unlink(missing_ok=True)

    @staticmethod
    def _delete(path: Path) -> None:
        """Delete an array folder or a stray entry of ``arrays/``; a link is removed, never followed."""
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        except FileNotFoundError:
            return
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)  # (rmtree removes links inside without following them)
        else:
            path.unlink(missing_ok=True)

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
        self._new_arrays.append(name)
        write_array(self.root / ARRAYS_DIR / name, data)
        return name

    def _open_array(self, name: str) -> Array:
        """An array of this project, its files checked the first time (see :func:`.arrays.check_array`)."""
        path = self.root / ARRAYS_DIR / name
        meta = self._checked.get(name)
        if meta is None:
            meta = self._checked[name] = check_array(path)
        return open_array(path, meta)
