"""What a model was trained on (``trained_on.json``) and whether an image fits it: an H&E tile does not fit the
chest X-ray model and a chest film does not fit the histology model (the bundled models' own files, the shipped
sample images); ``amvlm trained-on`` writes the file and ``amvlm segment`` warns about an image that does not fit."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from napari_amvlm.cli import main
from napari_amvlm.io import read_image
from napari_amvlm.model.trained_on import (
    TRAINED_ON_NAME,
    check_fit,
    describe_images,
    fitting_models,
    image_stats,
    read_trained_on,
    write_trained_on,
)
from napari_amvlm.resources import models_dir

from ..conftest import SAMPLE_DATA

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))
TILES = sorted((SAMPLE_DATA / "monuseg" / "img").glob("*.png"))


def _bundled(name):
    return read_trained_on(models_dir() / name)


@pytest.mark.parametrize("path", XRAYS + TILES, ids=lambda p: p.name)
def test_each_sample_fits_its_own_bundled_model_and_not_the_other(path):
    stats = image_stats(read_image(path))
    own, other = ("amvlm-qata", "amvlm-monuseg") if path in XRAYS else ("amvlm-monuseg", "amvlm-qata")
    assert check_fit(_bundled(own), stats).ok
    misfit = check_fit(_bundled(other), stats)
    assert misfit.reasons[0] == ("a colour image (3 channels; the model's training images have 1)"
                                 if path in TILES else "a gray image (1 channel; the model's training images have 3)")
    assert [f.name for f in fitting_models(stats, sorted(models_dir().iterdir()))] == [own]


def test_an_x_ray_saved_as_rgb_is_still_gray_and_a_dark_image_is_flagged():
    xray = read_image(XRAYS[0])
    assert check_fit(_bundled("amvlm-qata"), image_stats(np.repeat(xray[..., None], 3, axis=-1))).ok
    dark = (xray // 8).astype(np.uint8)  # a film far darker than any chest X-ray the model saw
    (reason,) = check_fit(_bundled("amvlm-qata"), image_stats(dark)).reasons
    assert reason.startswith("darker than its training images")
    assert check_fit(None, image_stats(dark)).ok  # a model folder that says nothing: no warning


def test_the_number_of_channels_is_recorded_and_checked(tmp_path):
    for name, channels in (("amvlm-qata", 1), ("amvlm-monuseg", 3)):  # the bundled files say it
        assert json.loads((models_dir() / name / TRAINED_ON_NAME).read_text())["channels"] == channels
        assert _bundled(name).channels == channels
    assert describe_images([read_image(p) for p in XRAYS], "QaTa sample", "chest X-ray").channels == 1
    assert describe_images([read_image(p) for p in TILES], "MoNuSeg sample", "H&E histology").channels == 3
    film = image_stats(read_image(XRAYS[0]))
    assert image_stats(np.repeat(read_image(XRAYS[0])[..., None], 3, axis=-1)).channels == film.channels == 1
    rgb_model = replace(_bundled("amvlm-qata"), channels=3)  # the check reads the channels (not the saturation)
    (reason,) = check_fit(rgb_model, film).reasons
    assert reason == "a gray image (1 channel; the model's training images have 3)"

    older = json.loads((models_dir() / "amvlm-monuseg" / TRAINED_ON_NAME).read_text())
    del older["channels"]  # a file written before the field: the channels follow from the saturation range
    (tmp_path / TRAINED_ON_NAME).write_text(json.dumps(older))
    assert read_trained_on(tmp_path).channels == 3
    (tmp_path / TRAINED_ON_NAME).write_text(json.dumps({**older, "channels": 2}))
    with pytest.raises(ValueError, match="channels is 1 .gray. or 3 .colour., not 2"):
        read_trained_on(tmp_path)


def test_a_large_image_is_measured_quickly_and_like_its_tiles():
    tile = read_image(TILES[0])
    mosaic = np.tile(tile, (4, 4, 1))  # 2000 x 2000
    a, b = image_stats(tile), image_stats(mosaic)
    assert abs(a.mean - b.mean) < 0.02 and abs(a.saturation - b.saturation) < 0.02


def test_write_read_and_refuse(tmp_path):
    described = describe_images([read_image(p) for p in TILES], "MoNuSeg sample", "H&E histology")
    assert described.images == len(TILES) and not described.gray
    write_trained_on(tmp_path, described)
    assert read_trained_on(tmp_path) == described and read_trained_on(tmp_path / "nowhere") is None
    (tmp_path / TRAINED_ON_NAME).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a valid trained_on.json: not a napari-amvlm/trained-on-v1"):
        read_trained_on(tmp_path)
    (tmp_path / TRAINED_ON_NAME).write_text("x" * 100_000)
    with pytest.raises(ValueError, match="larger than 64 KB"):
        read_trained_on(tmp_path)
    assert fitting_models(image_stats(read_image(TILES[0])), [tmp_path]) == []  # a bad file is left out


def test_cli_writes_it_and_segment_warns(tiny_seg_dir, capsys):
    code = main(["trained-on", "--model", str(tiny_seg_dir), "--data", str(SAMPLE_DATA / "qata"),
                 "--dataset", "QaTa sample", "--modality", "chest X-ray"])
    assert code == 0 and read_trained_on(tiny_seg_dir).images == len(XRAYS)
    out = tiny_seg_dir.parent / "mask.png"
    for image, warned in ((XRAYS[0], False), (TILES[0], True)):
        capsys.readouterr()
        assert main(["segment", "--model", str(tiny_seg_dir), "--image", str(image), "--text", "left lung",
                     "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert ("warning: the image is a colour image (3 channels; the model's training images have 1), unlike "
                "the model's training images, chest X-ray (gray, QaTa sample): its mask may mean little; it looks "
                "like the images of the bundled amvlm-monuseg"
                in err) == warned, err
