"""The clean-up of predicted masks: nothing outside the body, no specks, colour images keep their small objects."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from napari_amvlm.data.io import read_image, read_mask
from napari_amvlm.postprocess import Cleanup, body_mask, clean_mask, remove_specks

from .conftest import SAMPLE_DATA


def chest(shape=(200, 240)) -> np.ndarray:
    """A synthetic frontal chest film: black air around a bright body, two darker lungs inside it."""
    img = np.zeros(shape, np.uint8)
    h, w = shape
    img[ellipse(h // 2, w // 2, h * 0.55, w * 0.4, shape)] = 170
    for cx in (w * 0.35, w * 0.65):
        img[ellipse(h * 0.45, cx, h * 0.3, w * 0.1, shape)] = 80
    return img


def test_body_excludes_the_air_around_the_patient_and_keeps_the_lungs():
    img = chest()
    body = body_mask(img)
    assert not body[:, :10].any() and not body[:, -10:].any()  # air at the lateral edges
    assert body[90, 84] and body[90, 156] and body[100, 120]  # both lungs and the mediastinum


def test_clean_mask_removes_foreground_outside_the_body_and_specks():
    img = chest()
    mask = np.zeros(img.shape, bool)
    mask[ellipse(90, 84, 40, 15, img.shape)] = True  # a lesion in the image-left lung
    mask[disk((90, 156), 3, shape=img.shape)] = True  # a speck in the other lung (28 px < 1 % of 48,000)
    mask[60:120, 0:12] = True  # a blob in the air beside the body
    out = clean_mask(mask, img)
    assert out[90, 84] and not out[90, 156] and not out[60:120, 0:12].any()
    assert out.sum() == np.count_nonzero(mask[ellipse(90, 84, 40, 15, img.shape)])
    assert np.array_equal(clean_mask(mask, img, Cleanup(body=False, min_area=0)), mask)


@pytest.mark.parametrize("name", sorted(p.name for p in (SAMPLE_DATA / "qata" / "images").iterdir()))
def test_real_lesions_lie_inside_the_body(name):
    image = read_image(SAMPLE_DATA / "qata" / "images" / name)
    truth = read_mask(SAMPLE_DATA / "qata" / "masks" / f"mask_{name}")
    kept = (truth & body_mask(image)).sum() / truth.sum()
    assert kept > 0.99, f"{name}: the body step would remove {100 * (1 - kept):.1f}% of the true lesion"


def test_specks_are_counted_as_8_connected_regions():
    mask = np.zeros((100, 100), bool)
    mask[10:40, 10:40] = True  # 900 px: kept
    mask[np.arange(60, 70), np.arange(60, 70)] = True  # a 10-px diagonal line: one region, removed
    out = remove_specks(mask, min_area=0.01)  # 100 px
    assert out[20, 20] and not out[60:70, 60:70].any()
    assert remove_specks(mask, min_area=0.0009)[65, 65]  # 9 px: the line stays


def test_colour_images_skip_the_body_step():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[...] = (0, 0, 60)  # dark at the border: air, were this an X-ray
    rgb[30:70, 30:70] = (220, 160, 220)
    mask = np.zeros((100, 100), bool)
    mask[0:30, 0:30] = True
    assert np.array_equal(clean_mask(mask, rgb), mask)
    assert not clean_mask(mask, rgb.mean(axis=-1).astype(np.uint8)).any()  # the same image in gray: removed
