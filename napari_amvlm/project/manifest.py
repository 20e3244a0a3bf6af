"""The manifest of an annotation project (``amvlm-project.json``): every record, and the names of the arrays
that hold data. Reading and checking it (its size, then every field: :mod:`.schema`), a new one, and replacing it
atomically (the commit point)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from .records import CorruptProjectError, NotAProjectError, ProjectError, ProjectVersionError, utc_now
from .schema import SchemaError, check_manifest

MANIFEST_NAME = "amvlm-project.json"
FORMAT_NAME = "napari-amvlm-project"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20  # about 40,000 images with a prompt, a prediction and a human label each


def _read_bounded(path: Path) -> bytes:
    """The bytes of ``path``, refusing a file larger than MAX_MANIFEST_BYTES before reading it all."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size  # (read(n) would reserve n bytes first)
        data = f.read(min(size, MAX_MANIFEST_BYTES) + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise CorruptProjectError(f"{path} is larger than the {MAX_MANIFEST_BYTES >> 20} MiB a project manifest may "
                                  "have")
    return data


def is_project(path: str | os.PathLike) -> bool:
    """Cheap check (no validation): does ``path`` (a folder or its manifest) look like a project?"""
    path = Path(path)
    manifest = path if path.name == MANIFEST_NAME else path / MANIFEST_NAME
    try:
        if not manifest.is_file():
            return False
        return json.loads(_read_bounded(manifest)).get("format") == FORMAT_NAME
    except CorruptProjectError:
        return True  # ours by its name, too large: opening it says why it cannot be opened
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def new_manifest(name: str) -> dict[str, Any]:
    """The manifest of an empty project called ``name``."""
    now = utc_now()
    return {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "generation": 0,
        "name": name, "created": now, "updated": now,
        "images": {}, "models": {}, "rounds": [], "trash": {},
    }  # fmt: skip


def read_manifest(root: Path) -> dict[str, Any]:
    """Read and check the manifest of ``root``; raises a :class:`ProjectError` subclass, writes nothing."""
    if not root.exists():
        raise FileNotFoundError(f"no such project folder: {root}")
    manifest = root / MANIFEST_NAME
    if not root.is_dir() or not manifest.is_file():
        raise NotAProjectError(f"{root} is not an annotation project (no {MANIFEST_NAME})")
    try:
        m = json.loads(_read_bounded(manifest))
    except (OSError, ValueError, RecursionError) as err:
        if isinstance(err, CorruptProjectError):
            raise
        why = "it is nested too deeply" if isinstance(err, RecursionError) else err
        raise CorruptProjectError(f"{manifest} cannot be read as JSON: {why}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise NotAProjectError(f"{root} is not an annotation project ({MANIFEST_NAME} is not ours)")
    version = m.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptProjectError(f"{manifest} has no valid format_version")
    if version > FORMAT_VERSION:
        raise ProjectVersionError(
            f"{root} uses project format {version}, newer than the {FORMAT_VERSION} this napari-amvlm reads; "
            "upgrade napari-amvlm to open it"
        )
    for key in ("images", "models", "rounds", "trash"):
        m.setdefault(key, [] if key == "rounds" else {})
    try:
        check_manifest(m)
    except SchemaError as err:
        raise CorruptProjectError(f"{manifest} is refused: {err}") from None
    return m


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest file ``path`` atomically (see ``_atomic``): a reader sees the old file or the new
    one, never a mix. A manifest that would exceed MAX_MANIFEST_BYTES is not written (nothing is committed)."""
    text = json.dumps(manifest, indent=1, sort_keys=False)
    if len(text) > MAX_MANIFEST_BYTES:  # (ASCII only: json.dumps escapes the rest)
        raise ProjectError(f"the project would outgrow the {MAX_MANIFEST_BYTES >> 20} MiB of a project manifest: "
                           "start a new project for more images")
    atomic_write_text(path, text)
