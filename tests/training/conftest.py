"""Fixtures of the training tests: an annotation project of real X-rays to run retraining rounds from."""

from __future__ import annotations

import pytest

from napari_amvlm.project import Project

from ..conftest import SAMPLE_DATA

QATA_IMAGES = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))[:4]


@pytest.fixture
def project(tmp_path):
    """Four real X-rays: the first and the last are corrected (their expert masks), all but the third have prompts
    (a round needs two corrected images: one is held back to judge the new weights)."""
    from napari_amvlm.io import read_mask

    p = Project.create(tmp_path / "proj")
    ids = p.add_images(QATA_IMAGES)
    p.add_prompt(ids[0], "lower left lung", author="tester")
    p.add_prompt(ids[1], "lower right lung", author="tester")
    p.add_prompt(ids[3], "bilateral pulmonary infection", author="tester")
    for k in (0, 3):
        mask = read_mask(SAMPLE_DATA / "qata" / "masks" / f"mask_{QATA_IMAGES[k].name}")
        p.mark_corrected(ids[k], mask, author="tester")
    return p
