"""napari sample data: real images from the package's sample_data/, with their sentence (no Qt needed)."""

from __future__ import annotations

import numpy as np

from napari_amvlm._sample_data import TEXT_KEY, monuseg_tile, qata_chest_xray
from napari_amvlm.data.text import sides
from napari_amvlm.resources import sample_data_dir


def test_qata_sample_is_a_real_xray_with_a_one_sided_sentence():
    ((data, kwargs, kind),) = qata_chest_xray()
    assert kind == "image" and data.shape == (224, 224) and data.dtype == np.uint8 and data.std() > 10
    text = kwargs["metadata"][TEXT_KEY]
    assert sides(text) in ({"left"}, {"right"}) and not kwargs["rgb"]
    source = kwargs["metadata"]["amvlm_sample"]
    assert (sample_data_dir() / source["file"]).is_file() and source["license"] == "CC BY-NC-SA 3.0 IGO"


def test_monuseg_sample_is_an_rgb_tile_with_its_sentence():
    ((data, kwargs, _),) = monuseg_tile()
    assert data.shape == (500, 500, 3) and kwargs["rgb"] and "nuclei" in kwargs["metadata"][TEXT_KEY]
    assert (sample_data_dir() / "ATTRIBUTION.md").is_file() and (sample_data_dir() / "LICENSE").is_file()


def test_each_sample_names_a_bundled_model_that_ships():
    from napari_amvlm._sample_data import MODEL_KEY
    from napari_amvlm.model.hub import has_segmenter
    from napari_amvlm.resources import models_dir

    for sample, name in ((qata_chest_xray, "amvlm-qata"), (monuseg_tile, "amvlm-monuseg")):
        ((_, kwargs, _),) = sample()
        assert kwargs["metadata"][MODEL_KEY] == name
        folder = models_dir() / name
        assert (folder / "config.json").is_file() and has_segmenter(folder), folder
