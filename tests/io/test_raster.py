"""Image and mask reading and normalisation to model input."""

import numpy as np
import pytest
import skimage.io

from napari_amvlm.data.pixels import to_model_input
from napari_amvlm.io import read_image, read_mask

from ..conftest import shared_data


def test_gray_uint8_repeated_and_divided_by_255():
    img = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    x = to_model_input(img, 8)
    assert x.shape == (3, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], img / 255.0, atol=1e-6)
    np.testing.assert_array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[0], x[2])


def test_gray_with_channel_axis_equals_gray():
    img = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    np.testing.assert_array_equal(to_model_input(img[..., None], 16), to_model_input(img, 16))


def test_rgb_channels_kept_in_order():
    img = np.zeros((10, 10, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 128, 0
    x = to_model_input(img, 10)
    np.testing.assert_allclose(x[:, 0, 0], [1.0, 128 / 255, 0.0], atol=1e-6)


def test_rgba_drops_alpha():
    rgb = np.random.default_rng(1).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    alpha = np.zeros((12, 12, 1), np.uint8)
    np.testing.assert_array_equal(
        to_model_input(np.concatenate([rgb, alpha], -1), 12), to_model_input(rgb, 12)
    )


def test_uint16_with_small_max_is_visible():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 236, (64, 64)).astype(np.uint16)  # like DSB2018 fluorescence (max 235)
    x = to_model_input(img, 32)
    assert x.dtype == np.float32 and x.shape == (3, 32, 32)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.max() > 0.5 and x.mean() > 0.2  # a naive /65535 would give max 0.0036


def test_uint16_percentile_scaling_ignores_hot_pixels():
    img = np.tile(np.linspace(0, 1000, 100), (100, 1)).astype(np.uint16)
    img[0, 0] = 65535  # one hot pixel must not squash the image
    x = to_model_input(img, 100)
    assert x[0, 50, 50] == pytest.approx(0.5, abs=0.03)
    assert x.max() == 1.0 and x.min() == 0.0


def test_float_image_scaled_and_constant_image_is_zero():
    x = to_model_input(np.linspace(-5, 5, 400, dtype=np.float64).reshape(20, 20), 20)
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.all(to_model_input(np.full((5, 5), 7, np.uint16), 5) == 0.0)


def test_resize_to_requested_size_with_antialiasing():
    img = np.zeros((100, 100), np.uint8)
    img[:, ::2] = 255  # stripes: anti-aliasing averages them to mid-gray
    x = to_model_input(img, 10)
    assert x.shape == (3, 10, 10)
    assert abs(float(x.mean()) - 0.5) < 0.05 and float(x.std()) < 0.1


def test_channel_first_rgb_accepted():
    rgb = np.random.default_rng(3).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_model_input(np.moveaxis(rgb, -1, 0), 12), to_model_input(rgb, 12))


@pytest.mark.parametrize("shape", [(8, 8, 2), (2, 8, 8, 3), (8,), (8, 8, 5), (2, 8, 8)])
def test_unsupported_shapes_raise(shape):
    with pytest.raises(ValueError, match="unsupported image shape"):
        to_model_input(np.zeros(shape, np.uint8), 4)


def test_read_image_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_read_mask_instance_labels_and_nearest_resize(tmp_path):
    labels = np.zeros((40, 40), np.uint16)
    labels[:20, :20] = 1
    labels[20:, 20:] = 7
    skimage.io.imsave(tmp_path / "m.tif", labels, check_contrast=False)
    m = read_mask(tmp_path / "m.tif", 10)
    assert m.dtype == bool and m.shape == (10, 10)
    assert m[:5, :5].all() and m[5:, 5:].all() and not m[:5, 5:].any()
    assert read_mask(tmp_path / "m.tif", None).shape == (40, 40)


def test_real_16bit_fluorescence():
    dsb = shared_data("dsb2018")
    img = read_image(dsb / "img2d.tif")
    assert img.dtype == np.uint16 and img.max() < 1000
    x = to_model_input(img, 224)
    assert x.shape == (3, 224, 224) and x.max() == pytest.approx(1.0) and x.mean() > 0.05
    m = read_mask(dsb / "mask2d.tif", 224)
    assert 0.02 < m.mean() < 0.9
