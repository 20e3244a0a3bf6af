"""Prompt -> mask inference: shapes for every image kind, the embedding cache, and bad prompts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from napari_amvlm.inference import Segmenter, predict
from napari_amvlm.inference.postprocess import Cleanup
from napari_amvlm.io.image import ImageError
from napari_amvlm.model.amvlm import AMVLM
from napari_amvlm.model.segmenter import TextGuidedSegmenter


@pytest.fixture
def segmenter(tiny_cfg, tiny_seg_cfg):
    torch.manual_seed(0)
    return Segmenter(TextGuidedSegmenter(AMVLM(tiny_cfg), tiny_seg_cfg).eval())


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).integers(0, 255, (50, 70), dtype=np.uint8),
    np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8),
    np.random.default_rng(2).integers(0, 4000, (64, 48), dtype=np.uint16),
], ids=["gray", "rgb", "uint16"])
def test_predict_shapes(segmenter, image):
    pred = segmenter.predict(image, "lower left lung")
    assert pred.mask.shape == image.shape[:2] and pred.mask.dtype == bool
    assert pred.prob.shape == pred.uncertainty.shape == image.shape[:2]
    assert 0 <= pred.uncertainty.min() and pred.uncertainty.max() <= 1
    assert np.array_equal(pred.mask, pred.prob > 0.5)


def test_second_prompt_reuses_the_image_embedding(segmenter, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    calls = []
    original = segmenter.seg.amvlm.encode_image
    monkeypatch.setattr(segmenter.seg.amvlm, "encode_image", lambda *a, **k: calls.append(1) or original(*a, **k))
    a = segmenter.predict(image, "lower left lung")
    b = segmenter.predict(image, "upper right lung")
    assert len(calls) == 1 and segmenter.cache_hits == 1
    assert not np.allclose(a.text_prob, b.text_prob)  # the new prompt was used
    c = segmenter.predict(image.copy(), "lower left lung")  # same content, same cache entry
    assert np.array_equal(a.prob, c.prob) and len(calls) == 1


def test_fused_is_lambda_mix(segmenter):
    image = np.random.default_rng(3).integers(0, 255, (32, 32), dtype=np.uint8)
    p = segmenter.predict(image, "lower left lung")
    lam = segmenter.seg.cfg.fusion_lambda
    np.testing.assert_allclose(p.prob, lam * p.text_prob + (1 - lam) * p.teacher_prob, atol=1e-5)


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_is_a_clear_error(segmenter, prompt):
    with pytest.raises(ValueError, match="empty"):
        segmenter.predict(np.zeros((32, 32), np.uint8), prompt)


def test_long_and_non_latin_prompts_segment_with_notices(segmenter):
    image = np.random.default_rng(4).integers(0, 255, (32, 32), dtype=np.uint8)
    long = segmenter.predict(image, "left lung " * 1000)
    assert long.mask.shape == (32, 32)
    (notice,) = long.notices
    assert "24-token limit" in notice and "ignored 1,978 words: 'left', 'lung'" in notice
    mixed = segmenter.predict(image, "infección pulmonar, pulmón izquierdo — 左肺")
    assert mixed.mask.shape == (32, 32) and mixed.prompt.text == "infección pulmonar, pulmón izquierdo —"
    assert mixed.notices == ["ignored words not in the Latin alphabet (the model reads English): '左肺'"]


@pytest.mark.parametrize("image, message", [
    (np.zeros((1, 1), np.uint8), "1x1 pixels; the model needs at least 8x8"),
    (np.full((32, 32), np.nan, np.float32), "1,024 of 1,024 pixels are NaN or infinite"),
    (np.where(np.eye(32, dtype=bool), np.inf, 1.0), "32 of 1,024 pixels are NaN or infinite"),
    (np.full((32, 32, 3), 7, np.uint8), "constant (every pixel is 7)"),
], ids=["1x1", "all-nan", "inf", "constant"])
def test_images_without_a_meaningful_answer_are_refused(segmenter, image, message):
    with pytest.raises(ImageError, match=re.escape(message)):
        segmenter.predict(image, "lower left lung")
    assert segmenter.cache_misses == 0  # refused before the model ran


def test_cleanup_is_applied_on_request(segmenter, monkeypatch):
    image = np.random.default_rng(5).integers(0, 255, (32, 32), dtype=np.uint8)
    seen = []
    monkeypatch.setattr(predict, "clean_mask", lambda mask, img, c: seen.append((img, c)) or np.zeros_like(mask))
    raw = segmenter.predict(image, "lower left lung")
    cleaned = segmenter.predict(image, "lower left lung", cleanup=Cleanup())
    assert not raw.cleaned and seen[0][0].pixels is image and seen[0][1] == Cleanup() and len(seen) == 1
    assert cleaned.cleaned and not cleaned.mask.any() and np.array_equal(cleaned.prob, raw.prob)


def test_bad_image_shape(segmenter):
    with pytest.raises(ValueError, match="unsupported image shape"):
        segmenter.predict(np.zeros((2, 3, 4, 5), np.uint8), "left")


def test_mirror_averaging_makes_predictions_mirror_exact(segmenter):
    """With flip_average, the prediction for the mirrored image and the side-swapped sentence is the mirrored
    prediction, in the widget's path and in evaluation's; without it a model gives no such guarantee."""
    from napari_amvlm.data.text import flip_text_horizontal
    from napari_amvlm.inference import batch_probabilities

    image = np.random.default_rng(6).integers(0, 255, (32, 32), dtype=np.uint8)
    text = "unilateral pulmonary infection, one infected area, lower left lung."
    mirrored = flip_text_horizontal(text)
    x = torch.from_numpy(predict.to_model_input(image, 32))[None]
    for on in (False, True):
        segmenter.seg.cfg.flip_average = on
        segmenter._cache.clear()
        a, b = segmenter.predict(image, text), segmenter.predict(image[:, ::-1].copy(), mirrored)
        same = all(np.allclose(getattr(a, k)[:, ::-1], getattr(b, k), atol=1e-5)
                   for k in ("prob", "teacher_prob", "text_prob"))
        assert same is on
        fused = batch_probabilities(segmenter.seg, x, [text], "fused")
        assert np.allclose(fused[0, 0].numpy(), a.prob, atol=1e-5)  # both paths agree
        if on:
            plain = predict._probabilities(segmenter.seg, x, [text], "fused")
            flipped = predict._probabilities(segmenter.seg, x.flip(-1), [mirrored], "fused").flip(-1)
            assert torch.allclose(fused, 0.5 * (plain + flipped), atol=1e-6)
            seg_only = batch_probabilities(segmenter.seg, x, None, "segmenter")
            assert np.allclose(seg_only[0, 0].numpy(), a.teacher_prob, atol=1e-5)
