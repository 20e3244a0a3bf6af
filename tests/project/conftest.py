"""Fixtures of the project store tests: an empty project and a registered model."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_amvlm.project import Project

from ._helpers import make_weights


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p.amvlm", name="test")


@pytest.fixture
def model(project: Project, tmp_path: Path) -> str:
    return project.add_model(make_weights(tmp_path / "m1" / "model.safetensors")).sha256
