"""Large images at the model's scale: the window layout, the blending, the path an image smaller than the field
takes, and real MoNuSeg tiles segmented one by one against the same tiles as one mosaic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_amvlm.data.dataset import read_records
from napari_amvlm.evaluation import mosaic_figure
from napari_amvlm.inference import Segmenter, tiles
from napari_amvlm.io import read_image, read_mask
from napari_amvlm.io.image import as_image
from napari_amvlm.model.amvlm import AMVLM
from napari_amvlm.model.segmenter import TextGuidedSegmenter

from ..conftest import ROOT, SAMPLE_DATA, shared_data


@pytest.fixture
def segmenter(tiny_cfg, tiny_seg_cfg):
    torch.manual_seed(0)
    return Segmenter(TextGuidedSegmenter(AMVLM(tiny_cfg), tiny_seg_cfg).eval())


@pytest.mark.parametrize("length, window", [(32, 32), (33, 32), (100, 32), (224, 224), (448, 224), (895, 224)])
def test_windows_cover_the_image_and_overlap(length, window):
    s = tiles.starts(length, window)
    assert s[0] == 0 and s[-1] + window >= length and s == sorted(set(s))
    gaps = [b - a for a, b in zip(s, s[1:])]
    assert all(g <= window * (1 - tiles.OVERLAP) for g in gaps)  # neighbours share at least OVERLAP


def test_no_layout_for_an_image_within_the_field_or_a_whole_image_model():
    assert tiles.layout((1000, 1000), 1000, 224) is None
    assert tiles.layout((5000, 300), 0, 224) is None
    lay = tiles.layout((2000, 1000), 1000, 224)
    assert lay.scaled == (448, 224) and lay.count == len(lay.corners) > 2


def test_blending_the_windows_of_an_image_gives_back_the_image():
    rng = np.random.default_rng(0)
    unit = rng.random((900, 1300, 3), dtype=np.float32)
    lay = tiles.layout(unit.shape[:2], 300, 64)
    windows = tiles.cut(unit, lay)
    assert windows.shape == (lay.count, 3, 64, 64)
    whole = tiles.blend(windows, lay)
    assert whole.shape == (1, 3, *lay.scaled)
    y, x = lay.corners[-1]
    torch.testing.assert_close(whole[0, :, y:y + 64, x:x + 64], windows[-1], atol=1e-5, rtol=0)
    constant = tiles.blend(torch.full((lay.count, 1, 64, 64), 0.3), lay)
    torch.testing.assert_close(constant, torch.full_like(constant, 0.3))


def test_a_thin_image_is_padded_to_one_window():
    unit = np.random.default_rng(1).random((40, 3000), dtype=np.float32)
    lay = tiles.layout(unit.shape, 1000, 64)
    assert lay.scaled == (3, 192) and lay.padded == (64, 192)
    assert tiles.blend(tiles.cut(unit, lay), lay).shape == (1, 3, 3, 192)


def test_an_image_smaller_than_the_field_is_untouched_by_the_tiling_path(segmenter):
    image = np.random.default_rng(2).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    whole = segmenter.predict(image, "lower left lung")
    segmenter.field = 120  # the image fits: same path, same numbers
    fits = segmenter.predict(image, "lower left lung")
    assert fits.windows == whole.windows == 0
    assert np.array_equal(fits.prob, whole.prob) and np.array_equal(fits.uncertainty, whole.uncertainty)
    segmenter.field = 60  # now it does not
    tiled = segmenter.predict(image, "lower left lung")
    assert tiled.windows > 1 and tiled.mask.shape == image.shape[:2]
    assert not np.array_equal(tiled.prob, whole.prob)


def test_a_tiled_image_keeps_its_embedding_cache_and_uncertainty(segmenter, monkeypatch):
    image = np.random.default_rng(3).integers(0, 255, (150, 200), dtype=np.uint8)
    segmenter.field = 48
    calls = []
    original = segmenter.seg.amvlm.encode_image
    monkeypatch.setattr(segmenter.seg.amvlm, "encode_image", lambda *a, **k: calls.append(1) or original(*a, **k))
    a = segmenter.predict(image, "lower left lung")
    b = segmenter.predict(image, "upper right lung")
    assert segmenter.cache_hits == 1 and len(calls) == -(-a.windows // 8)  # one pass per batch of windows
    assert not np.allclose(a.text_prob, b.text_prob)
    for pred in (a, b):
        assert pred.uncertainty.shape == image.shape and 0 <= pred.uncertainty.min() <= pred.uncertainty.max() <= 1
        np.testing.assert_allclose(pred.prob, segmenter.seg.cfg.fusion_lambda * pred.text_prob
                                   + (1 - segmenter.seg.cfg.fusion_lambda) * pred.teacher_prob, atol=1e-5)


def test_mirror_averaging_works_on_windows(segmenter):
    segmenter.seg.cfg.flip_average = True
    segmenter.field = 48
    image = np.random.default_rng(4).integers(0, 255, (100, 130), dtype=np.uint8)
    pred = segmenter.predict(image, "lower left lung")
    mirrored = segmenter.predict(image[:, ::-1], "lower right lung")
    assert pred.windows > 1
    np.testing.assert_allclose(mirrored.prob[:, ::-1], pred.prob, atol=1e-4)


def _sample_tiles() -> list:
    return [(read_image(r.image)[..., :3], read_mask(r.mask), r.text) for r in read_records(SAMPLE_DATA / "monuseg")]


def test_a_mosaic_of_the_sample_tiles_scores_as_the_tiles_one_by_one():
    """The shipped H&E tiles (500 px) with the bundled MoNuSeg model at a field of 500 px: a 2 x 2 mosaic is
    segmented by windows and scores within 2 Dice of the tiles one by one; squeezed whole, it does not."""
    a, b = _sample_tiles()
    seg = Segmenter.from_folder(ROOT / "models" / "amvlm-monuseg")
    seg.field = a[0].shape[0]
    tiled = mosaic_figure(seg, [a, b, b, a])
    seg.field = 0
    whole = mosaic_figure(seg, [a, b, b, a])
    print(f"\nsample tiles: one by one {np.mean(tiled.one_by_one):.2f}, mosaic tiled {np.mean(tiled.mosaic):.2f} "
          f"({tiled.windows} windows), mosaic whole {np.mean(whole.mosaic):.2f}")
    assert tiled.windows > 1 and whole.windows == 0
    assert abs(tiled.gap) < 2
    assert whole.gap > 2  # the test can fail: without the windows the mosaic loses more than 2 points


@pytest.mark.slow
def test_a_mosaic_of_monuseg_validation_tiles_scores_as_the_tiles_one_by_one():
    """Issue 28's goal on real data: four 1000-pixel validation tiles as one 2000 x 2000 image."""
    records = sorted(read_records(shared_data("monuseg", "Val_Folder")), key=lambda r: r.name)[:4]
    seg = Segmenter.from_folder(ROOT / "models" / "amvlm-monuseg")
    assert seg.field == 1000
    fig = mosaic_figure(seg, [(read_image(r.image), read_mask(r.mask), r.text) for r in records])
    print(f"\nVal_Folder tiles 0-3: one by one {np.mean(fig.one_by_one):.2f}, mosaic {np.mean(fig.mosaic):.2f}")
    assert fig.windows > 1 and abs(fig.gap) < 2


def test_the_typed_image_is_scaled_once_for_the_whole_image():
    """A window of a 16-bit image is scaled as the whole image is, not by its own range."""
    pixels = np.zeros((400, 400), np.uint16)
    pixels[:, 200:] = 4000
    pixels[:200, :200] = np.arange(200, dtype=np.uint16)[None, :]
    unit = as_image(pixels).unit
    lay = tiles.layout(pixels.shape, 100, 32)
    top_left = tiles.cut(unit, lay)[0, 0]
    assert float(top_left.max()) < 0.1  # its own range would stretch it to 1
