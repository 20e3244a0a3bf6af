"""Position words steer the shipped model (GUIDE §2.6): on real one-sided X-rays, the true sentence gives a clearly
better mask than the same sentence with left and right swapped, and the text mask sits on the named side.

The images are the bundled sample ones (training split, so always present); the figure on the 116 one-sided
validation images comes from ``amvlm evaluate --one-side-only [--swap-sides]`` (models/amvlm-qata/README.md)."""

from __future__ import annotations

import pytest
import torch

from napari_amvlm.data.dataset import ImageTextDataset
from napari_amvlm.data.text import flip_text_horizontal, sides
from napari_amvlm.evaluation import evaluate
from napari_amvlm.inference import batch_probabilities
from napari_amvlm.inference.postprocess import Cleanup
from napari_amvlm.model.hub import load_segmenter

from ..conftest import ROOT, SAMPLE_DATA, shared_data


@pytest.fixture(scope="module")
def shipped():
    seg = load_segmenter(ROOT / "models" / "amvlm-qata")
    ds = ImageTextDataset(SAMPLE_DATA / "qata", size=seg.amvlm.cfg.vision.image_size, require_masks=True)
    ds.keep([i for i, t in enumerate(ds.texts) if sides(t) in ({"left"}, {"right"})])
    assert len(ds) >= 6 and {frozenset(sides(t)) for t in ds.texts} == {frozenset({"left"}), frozenset({"right"})}
    return seg, ds


def test_true_sentence_beats_the_swapped_one(shipped):
    seg, ds = shipped
    true = evaluate(seg, ds, mode="fused")
    swapped = evaluate(seg, ds, mode="fused", texts=[flip_text_horizontal(t) for t in ds.texts])
    print(f"\none-sided sample images: true {true.line()} | swapped {swapped.line()}")
    assert true.mean_dice > swapped.mean_dice + 10


def test_text_mask_sits_on_the_named_side(shipped):
    seg, ds = shipped
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    for texts in (ds.texts, [flip_text_horizontal(t) for t in ds.texts]):
        with torch.inference_mode():
            t = batch_probabilities(seg, images, texts, "textmask")[:, 0]
        half = t.shape[-1] // 2
        left, right = t[..., :half].mean((1, 2)), t[..., half:].mean((1, 2))
        for text, l_mass, r_mass in zip(texts, left.tolist(), right.tolist()):
            named_left = sides(text) == {"left"}
            assert (l_mass > r_mass) == named_left, (text, l_mass, r_mass)


def test_shipped_model_on_the_one_sided_validation_images(shipped):
    """Issue-12 goals on the 116 one-sided images of qata_cov19/valid: with the true sentence at least 60 Dice, and at
    least 30 above the same sentence with left and right swapped (fused, as the plugin shows; measured 60.67 vs
    3.89)."""
    seg, _ = shipped
    ds = ImageTextDataset(shared_data("qata_cov19", "valid"), size=seg.amvlm.cfg.vision.image_size,
                          require_masks=True)
    ds.keep([i for i, t in enumerate(ds.texts) if sides(t) in ({"left"}, {"right"})])
    true = evaluate(seg, ds, mode="fused", cleanup=Cleanup())  # the model's clean-up, as the plugin shows
    swapped = evaluate(seg, ds, mode="fused", texts=[flip_text_horizontal(t) for t in ds.texts], cleanup=Cleanup())
    print(f"\none-sided valid images: true {true.line()} | swapped {swapped.line()}")
    assert len(ds) == 116
    assert true.mean_dice >= 60.0 and true.mean_dice - swapped.mean_dice >= 30.0
