"""The manifest of an annotation project (``amvlm-project.json``): every record, and the names of the arrays
that hold data. Reading and checking it, a new one, and replacing it atomically (the commit point)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from .records import CorruptProjectError, NotAProjectError, ProjectVersionError, utc_now

MANIFEST_NAME = "amvlm-project.json"
FORMAT_NAME = "napari-amvlm-project"
FORMAT_VERSION = 1


def is_project(path: str | os.PathLike) -> bool:
    """Cheap check (no validation): does ``path`` (a folder or its manifest) look like a project?"""
    path = Path(path)
    manifest = path if path.name == MANIFEST_NAME else path / MANIFEST_NAME
    try:
        with open(manifest, encoding="utf-8") as f:
            return json.load(f).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
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


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest file ``path`` atomically (see ``_atomic``): a reader sees the old file or the new
    one, never a mix."""
    atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=False))
