"""Fixtures of the training tests: an annotation project of real X-rays to run retraining rounds from."""

from __future__ import annotations

import pytest

from napari_amvlm.project import Project

from ..conftest import SAMPLE_DATA

QATA_IMAGES = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))[:3]


@pytest.fixture
def project(tmp_path):
    """Three real X-rays; the first is corrected (its expert mask), the first two have prompts."""
    from napari_amvlm.io import read_mask

    p = Project.create(tmp_path / "proj")
    ids = p.add_images(QATA_IMAGES)
    mask = read_mask(SAMPLE_DATA / "qata" / "masks" / f"mask_{QATA_IMAGES[0].name}")
    p.add_prompt(ids[0], "lower left lung", author="tester")
    p.add_prompt(ids[1], "lower right lung", author="tester")
    p.mark_corrected(ids[0], mask, author="tester")
    return p
