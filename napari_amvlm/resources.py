"""Where the bundled models and sample data live, for editable installs and wheels alike.

A wheel carries ``models/`` and ``sample_data/`` inside the package; a source checkout keeps them at the
repository's top level, next to the package.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder ``name`` (``models`` or ``sample_data``) shipped with the project."""
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the bundled folder {name!r} is missing from this installation (looked in {_PKG})")


def models_dir() -> Path:
    return resource_dir("models")


def sample_data_dir() -> Path:
    return resource_dir("sample_data")


DEFAULT_MODEL_NAME = "amvlm-qata"


def default_model_dir() -> Path:
    """The model that ships with the plugin and loads offline."""
    return models_dir() / DEFAULT_MODEL_NAME
