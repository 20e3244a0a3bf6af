"""Caption-aware pair augmentation and the batched photometric view."""

import pytest
import torch

from napari_amvlm.data.transforms import PairTransform, photometric_view


def _left_half_pair(size: int = 32):
    """A textured image and a mask with foreground only in the left half."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, size, size, generator=g)
    mask = torch.zeros(1, size, size)
    mask[:, 4 : size - 4, 2 : size // 2 - 2] = 1.0
    return image, mask


def _geometry_only(**kw) -> PairTransform:
    return PairTransform(
        **{"hflip_p": 0.0, "rotate_deg": 0.0, "crop_scale": (1.0, 1.0), "jitter": 0.0, "noise_std": 0.0, **kw}
    )


def test_hflip_rewrites_text_and_mask_follows():
    image, mask = _left_half_pair()
    out_img, out_mask, text = _geometry_only(hflip_p=1.0)(image, mask, "upper left lung")
    assert text == "upper right lung"
    w = mask.shape[-1]
    assert out_mask[..., : w // 2].sum() == 0 and out_mask[..., w // 2 :].sum() == mask.sum()
    assert torch.equal(out_img, image.flip(-1)) and torch.equal(out_mask, mask.flip(-1))


def test_vflip_swaps_upper_and_lower():
    image, _ = _left_half_pair()
    mask = torch.zeros(1, 32, 32)
    mask[:, :10] = 1.0  # upper band
    out_img, out_mask, text = _geometry_only(vflip_p=1.0)(image, mask, "upper left lung and lower right lung")
    assert text == "lower left lung and upper right lung"
    assert out_mask[:, :16].sum() == 0 and out_mask[:, 22:].sum() == mask.sum()
    assert torch.equal(out_img, image.flip(-2))


def test_no_flip_keeps_text():
    image, mask = _left_half_pair()
    _, out_mask, text = _geometry_only()(image, mask, "upper left lung")
    assert text == "upper left lung" and torch.equal(out_mask, mask)


@pytest.mark.parametrize("kw", [{"rotate_deg": 30.0}, {"crop_scale": (0.5, 0.6)}])
def test_rotation_and_crop_skipped_for_positional_text(kw):
    image, mask = _left_half_pair()
    t = _geometry_only(**kw)
    for seed in range(5):
        out_img, out_mask, _ = t(
            image, mask, "lower left lung", generator=torch.Generator().manual_seed(seed)
        )
        assert torch.equal(out_img, image) and torch.equal(out_mask, mask)


@pytest.mark.parametrize("kw", [{"rotate_deg": 30.0}, {"crop_scale": (0.5, 0.6)}])
def test_rotation_and_crop_applied_for_non_positional_text(kw):
    image, mask = _left_half_pair()
    out_img, out_mask, text = _geometry_only(**kw)(
        image, mask, "The nuclei are evenly distributed.", generator=torch.Generator().manual_seed(1)
    )
    assert text == "The nuclei are evenly distributed."
    assert not torch.equal(out_img, image) and not torch.equal(out_mask, mask)
    assert set(out_mask.unique().tolist()) <= {0.0, 1.0}  # nearest sampling keeps the mask binary
    assert out_img.shape == image.shape and out_mask.shape == mask.shape


def test_crop_zooms_in_on_the_mask():
    image, mask = _left_half_pair()
    _, out_mask, _ = _geometry_only(crop_scale=(0.5, 0.5))(
        image, mask, "nuclei", torch.Generator().manual_seed(0)
    )
    assert out_mask.sum() > mask.sum() * 0.9  # a 0.5-area crop magnifies what it keeps


def test_intensity_changes_image_only_and_stays_in_range():
    image, mask = _left_half_pair()
    t = PairTransform(hflip_p=0.0, rotate_deg=0.0, crop_scale=(1.0, 1.0), jitter=0.3, noise_std=0.05)
    out_img, out_mask, text = t(image, mask, "upper left lung", torch.Generator().manual_seed(3))
    assert not torch.equal(out_img, image) and torch.equal(out_mask, mask) and text == "upper left lung"
    assert float(out_img.min()) >= 0.0 and float(out_img.max()) <= 1.0


def test_pair_transform_deterministic_with_seed():
    image, mask = _left_half_pair()
    t = PairTransform(hflip_p=0.5, vflip_p=0.5)

    def run(seed):
        return t(image, mask, "The nuclei are evenly distributed.", torch.Generator().manual_seed(seed))

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(a[0], c[0])


def test_hflip_probability_roughly_respected():
    image, mask = _left_half_pair(8)
    t = _geometry_only(hflip_p=0.5)
    g = torch.Generator().manual_seed(0)
    flips = sum(t(image, mask, "left", g)[2] == "right" for _ in range(400))
    assert 150 < flips < 250


def _real_batch(sample_data):
    from napari_amvlm.data.dataset import ImageTextDataset, collate

    ds = ImageTextDataset([sample_data / "qata", sample_data / "monuseg"], size=64)
    return collate([ds[i] for i in range(len(ds))])["image"]


def test_photometric_view_not_black_differs_and_in_range(sample_data):
    images = _real_batch(sample_data)
    view = photometric_view(images, torch.Generator().manual_seed(0))
    assert view.shape == images.shape and view.dtype == images.dtype
    assert float(view.min()) >= 0.0 and float(view.max()) <= 1.0
    per_image_mean = view.mean(dim=(1, 2, 3))
    assert bool((per_image_mean > 0.1).all())  # the released code's uint8 cast gave all-black views
    assert bool(((view - images).abs().mean(dim=(1, 2, 3)) > 0.005).all())
    # the view keeps the picture: strongly correlated with the input
    corr = torch.corrcoef(torch.stack([view.flatten(), images.flatten()]))[0, 1]
    assert float(corr) > 0.8


def test_photometric_view_deterministic_with_seed():
    images = torch.rand(4, 3, 16, 16)
    a = photometric_view(images, torch.Generator().manual_seed(5))
    b = photometric_view(images, torch.Generator().manual_seed(5))
    c = photometric_view(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_photometric_view_rejects_unscaled_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        photometric_view(torch.rand(2, 3, 8, 8) * 255)
    with pytest.raises(TypeError, match="float"):
        photometric_view(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_apply_reports_the_flips_it_made():
    """apply() returns which flips happened (the stage-2 embedding cache keys on them), consistent with the
    image and the rewritten sentence."""
    image = torch.rand(3, 8, 8)
    mask = (torch.rand(1, 8, 8) > 0.5).float()
    seen = set()
    for seed in range(16):
        t = PairTransform(hflip_p=0.5, vflip_p=0.5, rotate_deg=0.0, crop_scale=(1.0, 1.0), jitter=0.0,
                          noise_std=0.0)
        out, m, text, (h, v) = t.apply(image, mask, "upper left lung", torch.Generator().manual_seed(seed))
        expect = image.flip(-1) if h else image
        expect = expect.flip(-2) if v else expect
        assert torch.equal(out, expect)
        assert text == f"{'lower' if v else 'upper'} {'right' if h else 'left'} lung"
        seen.add((h, v))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}
