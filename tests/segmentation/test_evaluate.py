"""`amvlm evaluate` computes per-image Dice/IoU exactly as a hand computation, and `amvlm segment` writes a mask."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from skimage import io

from napari_amvlm.cli import main
from napari_amvlm.model.amvlm import AMVLM
from napari_amvlm.model.hub import ModelLoadError, load_segmenter, save_segmenter
from napari_amvlm.model.segmenter import TextGuidedSegmenter

from ..conftest import SAMPLE_DATA, qata_sample_copy


@pytest.fixture
def seg_dir(tiny_cfg, tiny_seg_cfg, tmp_path):
    torch.manual_seed(0)
    seg = TextGuidedSegmenter(AMVLM(tiny_cfg), tiny_seg_cfg).eval()
    return save_segmenter(seg, tmp_path / "seg")


def _hand_dice_iou(pred, gt):
    inter = np.logical_and(pred, gt).sum()
    if pred.sum() + gt.sum() == 0:
        return 1.0, 1.0
    return 2 * inter / (pred.sum() + gt.sum()), inter / np.logical_or(pred, gt).sum()


def test_evaluate_matches_hand_computation(seg_dir, tmp_path, capsys):
    data = tmp_path / "two"
    qata_sample_copy(data, 2)
    per = tmp_path / "per.csv"
    assert main(["evaluate", "--model", str(seg_dir), "--data", str(data), "--per-image", str(per),
                 "--no-postprocess"]) == 0  # the hand computation scores the raw mask
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("dice=") and last.endswith("n=2")
    seg = load_segmenter(seg_dir)
    from napari_amvlm.data.dataset import ImageTextDataset
    from napari_amvlm.inference import batch_probabilities

    ds = ImageTextDataset(data, size=32, require_masks=True)
    expected = []
    for i in range(2):
        it = ds[i]
        prob = batch_probabilities(seg, it["image"][None], [it["text"]], "fused")[0, 0].numpy()
        expected.append(_hand_dice_iou(prob > 0.5, it["mask"][0].numpy() > 0.5))
    got = [(float(r["dice"]), float(r["iou"])) for r in csv.DictReader(open(per))]
    assert [x for pair in got for x in pair] == pytest.approx([float(x) for pair in expected for x in pair], abs=1e-9)
    mean_dice = 100 * np.mean([d for d, _ in expected])
    assert f"dice={mean_dice:.2f}" in last


def test_segment_writes_a_binary_mask(seg_dir, tmp_path, capsys):
    image = next((SAMPLE_DATA / "qata" / "images").glob("*.png"))
    out = tmp_path / "mask.png"
    assert main(["segment", "--model", str(seg_dir), "--image", str(image), "--text", "lower left lung",
                 "--out", str(out), "--uncertainty", str(tmp_path / "u.tif")]) == 0
    mask = io.imread(out)
    assert mask.shape == io.imread(image).shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert io.imread(tmp_path / "u.tif").dtype == np.float32


def test_segment_bad_inputs(seg_dir, tmp_path, capsys):
    image = next((SAMPLE_DATA / "qata" / "images").glob("*.png"))
    assert main(["segment", "--model", str(seg_dir), "--image", str(image), "--text", "  ", "--out",
                 str(tmp_path / "m.png")]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["segment", "--model", str(tmp_path / "nope"), "--image", str(image), "--text", "x", "--out",
                 str(tmp_path / "m.png")]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_pretrained_only_folder_has_no_segmenter(tiny_amvlm_dir):
    with pytest.raises(ModelLoadError, match="no segmenter"):
        load_segmenter(tiny_amvlm_dir)
