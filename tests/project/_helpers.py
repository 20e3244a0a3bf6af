"""Helpers of the project store tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from napari_amvlm.project import Project

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_QATA = ROOT / "sample_data" / "qata"
SHARED_DATA = ROOT.parent / "shared" / "data"


def make_weights(path: Path, value: float = 1.0) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.full((4, 4), value, np.float32)}, str(path))
    return path


def folder_digest(root: Path) -> str:
    """Hash of the paths under root and every file's bytes, mtime and mode (detects any change)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{p.is_dir()}".encode())
        if p.is_file():
            h.update(f"{st.st_mtime_ns}|{st.st_mode}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def array_dirs(project: Project) -> set[str]:
    return {p.name for p in (project.root / "arrays").iterdir()}


def binary(shape: tuple[int, int], seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.5).astype(np.uint8)
