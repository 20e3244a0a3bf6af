"""Options of the segmentation commands: the mask clean-up follows the model folder (on for chest X-ray models, off
for a model trained with ``amvlm train --no-cleanup``; ``--no-postprocess`` turns it off for any model), and
``amvlm evaluate --no-position-prior`` scores the text mask without its learned position maps."""

from __future__ import annotations

import json
import shutil

import pytest

from napari_amvlm.cli import main
from napari_amvlm.inference import predict
from napari_amvlm.model.hub import read_segmenter

from ..conftest import SAMPLE_DATA, qata_sample_copy


@pytest.fixture()
def cleaned(monkeypatch):
    """The number of masks that went through the clean-up."""
    calls = []
    real = predict.clean_mask
    monkeypatch.setattr(predict, "clean_mask", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _without_cleanup(folder, dest):
    shutil.copytree(folder, dest)
    cfg = json.loads((dest / "segmenter.json").read_text())
    cfg["segmenter"]["cleanup"] = False
    (dest / "segmenter.json").write_text(json.dumps(cfg))
    return dest


@pytest.mark.parametrize("model_cleanup, flags, expected", [
    (True, [], 1), (True, ["--no-postprocess"], 0), (False, [], 0), (False, ["--no-postprocess"], 0),
])  # fmt: skip
def test_segment_cleans_up_as_the_model_says(cleaned, tiny_seg_dir, tmp_path, model_cleanup, flags, expected):
    model = tiny_seg_dir if model_cleanup else _without_cleanup(tiny_seg_dir, tmp_path / "histology")
    image = next((SAMPLE_DATA / "qata" / "images").iterdir())
    assert main(["segment", "--model", str(model), "--image", str(image), "--text", "lower left lung",
                 "--out", str(tmp_path / "m.png"), *flags]) == 0
    assert len(cleaned) == expected and (tmp_path / "m.png").is_file()


def test_train_writes_the_models_cleanup_and_mirror_defaults(tiny_amvlm_dir, tmp_path, capsys):
    data = tmp_path / "data"
    qata_sample_copy(data, 4)
    for i, (flags, cleanup, mirror) in enumerate((([], True, False), (["--no-cleanup", "--flip-average"], False, True))):
        out = tmp_path / f"trained-{i}"
        assert main(["train", "--data", str(data), "--model", str(tiny_amvlm_dir), "--out", str(out),
                     "--labeled-fraction", "0.5", "--max-steps", "1", "--device", "cpu", *flags]) == 0
        cfg = read_segmenter(out)[0]
        assert cfg.cleanup is cleanup and cfg.flip_average is mirror


def test_evaluate_without_the_position_prior(tiny_seg_dir, tmp_path, capsys):
    """--no-position-prior drops the text mask's learned position maps: with a strong prior on the named regions the
    text-mask Dice changes, and it equals the Dice of the same model whose prior is zero."""
    import torch

    from napari_amvlm.model.hub import load_segmenter, save_segmenter

    data = tmp_path / "data"
    qata_sample_copy(data, 4)
    seg = load_segmenter(tiny_seg_dir)
    flat = save_segmenter(seg, tmp_path / "flat")
    with torch.no_grad():
        seg.textmask.prior.fill_(5.0)
    strong = save_segmenter(seg, tmp_path / "strong")

    def dice(model, *flags):
        js = tmp_path / "summary.json"
        assert main(["evaluate", "--model", str(model), "--data", str(data), "--mode", "textmask", "--no-postprocess",
                     "--json", str(js), *flags]) == 0
        capsys.readouterr()
        return json.loads(js.read_text())["dice"]

    assert dice(strong) != dice(strong, "--no-position-prior") == dice(flat)
