"""The shipped model on real chest X-rays: the side convention the user chooses (image or patient) and the lung zones
the sentence names.

Sides: on the bundled one-sided sample X-rays (always present), a sentence read in the patient's convention is the
mirror of the same sentence read in the image's, and what a radiologist writes for a finding gives the mask the
dataset's sentence gives. Zones: on the valid images whose sentence names only upper (or only lower) zones, the mask
lies in that third of the lung field more than in either other third, and swapping the zone words moves it away
(the figure of the model card: ``amvlm evaluate --zones``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.data.dataset import ImageTextDataset
from napari_amvlm.data.text import flip_text_horizontal, sides
from napari_amvlm.evaluation import ZONES, lung_rows, named_zones, zone_figure, zone_shares, zone_table
from napari_amvlm.inference import Segmenter
from napari_amvlm.inference.postprocess import Cleanup
from napari_amvlm.io import read_image, read_mask
from napari_amvlm.metrics import dice_iou
from napari_amvlm.model.hub import load_segmenter

from ..conftest import ROOT, SAMPLE_DATA, shared_data

MODEL = ROOT / "models" / "amvlm-qata"


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter.from_folder(MODEL)


@pytest.fixture(scope="module")
def one_sided():
    """(image, mask, sentence) of the bundled sample X-rays whose sentence names one side."""
    ds = ImageTextDataset(SAMPLE_DATA / "qata", size=224, require_masks=True)
    out = [(read_image(r.image), read_mask(r.mask), r.text) for r in ds.records if len(sides(r.text)) == 1]
    assert len(out) >= 6 and {frozenset(sides(t)) for *_, t in out} == {frozenset({"left"}), frozenset({"right"})}
    return out


def test_patient_sides_read_the_mirror_sentence_before_the_text_encoder(segmenter, one_sided, monkeypatch):
    read = []
    encode = segmenter.seg.amvlm.encode_text
    monkeypatch.setattr(segmenter.seg.amvlm, "encode_text",
                        lambda texts, **kw: read.append(texts) or encode(texts, **kw))
    for image, _, sentence in one_sided:
        as_image = segmenter.predict(image, sentence, sides="image", cleanup=Cleanup())
        radiologist = flip_text_horizontal(sentence)  # the same finding, in the patient's left/right
        as_patient = segmenter.predict(image, radiologist, sides="patient", cleanup=Cleanup())
        # rewritten once, before the encoder (and the position prior); mirror averaging adds the mirror's sentence
        expected = [sentence, radiologist] if segmenter.seg.cfg.flip_average else [sentence]
        assert read[-2:] == [expected, expected]
        assert np.array_equal(as_patient.mask, as_image.mask) and np.array_equal(as_patient.prob, as_image.prob)
        assert as_patient.prompt.text == sentence and as_patient.notices == []


def test_each_convention_puts_the_mask_on_its_own_side(segmenter, one_sided):
    """The dataset's sentence read in the image's convention (its own) against the same words read in the patient's
    (which name the other lung): the text mask lies on the side the convention names, and the fused mask is far
    better when the words are read in their own convention."""
    dice = {"image": [], "patient": []}
    for image, truth, sentence in one_sided:
        for convention in dice:
            pred = segmenter.predict(image, sentence, sides=convention, cleanup=Cleanup())
            dice[convention].append(dice_iou(pred.mask, truth)[0])
            # where the text mask lies: the fused mask also weighs the image, which shows the lesion where it is
            half = pred.text_prob.shape[1] // 2
            left, right = pred.text_prob[:, :half].sum(), pred.text_prob[:, half:].sum()
            on_image_left = (sides(sentence) == {"left"}) == (convention == "image")
            assert (left > right) == on_image_left, (sentence, convention, left, right)
    image, patient = 100 * np.mean(dice["image"]), 100 * np.mean(dice["patient"])
    print(f"\none-sided sample X-rays: Dice read as image sides {image:.2f}, read as patient sides {patient:.2f}")
    assert image > patient + 10


# ---------------------------------------------------------------------------------------------------- zones
@pytest.fixture(scope="module")
def valid():
    return ImageTextDataset(shared_data("qata_cov19", "valid"), size=224, require_masks=True)


def test_the_true_masks_satisfy_the_zone_goal(valid):
    """The yardstick itself: thirds of the lung field (not of the image) are where the ground truth of an
    upper-only / lower-only sentence lies."""
    rows = lung_rows(valid)
    assert 0.05 < rows[0] < 0.25 and 0.65 < rows[1] < 0.85, rows
    for zone in ("upper", "lower"):
        shares = np.mean([zone_shares(read_mask(r.mask), rows) for r in valid.records
                          if named_zones(r.text) == {zone}], axis=0)
        k = ZONES.index(zone)
        assert all(shares[k] > s for j, s in enumerate(shares) if j != k), (zone, shares)


@pytest.fixture(scope="module")
def zones(valid):
    rows, figure = zone_figure(load_segmenter(MODEL), valid, limit=30, cleanup=Cleanup())
    print("\n" + zone_table(rows, figure))
    return {r.zone: r for r in figure}


@pytest.mark.slow
@pytest.mark.parametrize("zone", ["upper", "lower"])
def test_the_mask_sits_in_the_named_zone(zones, zone):
    r = zones[zone]
    assert r.n >= 6
    assert r.holds, f"{zone}: shares upper/middle/lower {r.shares}"
    assert r.share > r.share_swapped  # the control: the same sentence with upper <-> lower moves the mask away
