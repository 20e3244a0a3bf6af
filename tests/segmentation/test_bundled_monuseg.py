"""The bundled MoNuSeg model finds nuclei on the shipped H&E sample tiles and keeps them (no chest X-ray clean-up)."""

from __future__ import annotations

import numpy as np

from napari_amvlm.data.dataset import read_records
from napari_amvlm.inference import Segmenter
from napari_amvlm.io import read_image
from napari_amvlm.metrics import dice_iou

from ..conftest import ROOT, SAMPLE_DATA


def test_nuclei_on_the_sample_tiles():
    seg = Segmenter.from_folder(ROOT / "models" / "amvlm-monuseg")
    assert seg.seg.cfg.cleanup is False
    scores = []
    for record in read_records(SAMPLE_DATA / "monuseg"):
        pred = seg.predict(read_image(record.image), record.text, cleanup=None)
        truth = read_image(record.mask) > 0
        truth = truth if truth.ndim == 2 else truth[..., 0]
        assert pred.mask.shape == truth.shape
        scores.append(dice_iou(pred.mask > 0, truth)[0])
    print(f"\nDice on the {len(scores)} sample tiles: {[round(100 * s, 1) for s in scores]}")
    assert len(scores) == 2 and np.mean(scores) > 0.55
