"""Model folders: damaged, truncated or mismatched checkpoints give a clear error, never a deep traceback."""

from __future__ import annotations

import json

import pytest
import torch

from napari_amvlm.cli import main
from napari_amvlm.model.amvlm import AMVLM
from napari_amvlm.model.hub import ModelLoadError, load_model, save_model


@pytest.fixture
def saved(tiny_cfg, tmp_path):
    torch.manual_seed(0)
    model = AMVLM(tiny_cfg).eval()
    save_model(model, tmp_path / "m")
    return tmp_path / "m"


def test_roundtrip(saved):
    model = load_model(saved)
    assert model.cfg.vision.width == 32


def test_truncated_weights(saved):
    w = saved / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="damaged or truncated"):
        load_model(saved)


def test_mismatched_config(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["model"]["vision"]["width"] = 64
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="does not match its config"):
        load_model(saved)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json is missing"):
        load_model(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(tmp_path / "bad")


def test_unknown_config_field(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["model"]["vision"]["colour"] = 1
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown VisionConfig fields: colour"):
        load_model(saved)


def test_cli_reports_a_damaged_resume_file_in_one_line(saved, tmp_path, capsys):
    (saved / "resume.safetensors").write_bytes(b"garbage")
    code = main(["pretrain", "--data", "sample_data/qata", "--out", str(saved), "--resume", "--max-steps", "1",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "damaged" in err and "Traceback" not in err


def test_segmenter_folder_keeps_the_pretrained_file_bytes(saved, tiny_seg_cfg, tmp_path):
    from napari_amvlm.model.hub import load_segmenter, save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    seg = TextGuidedSegmenter(load_model(saved), tiny_seg_cfg)
    out = save_segmenter(seg, tmp_path / "seg", amvlm_source=saved)
    assert (out / "model.safetensors").read_bytes() == (saved / "model.safetensors").read_bytes()
    assert load_segmenter(out).textmask is not None


def test_weights_saved_before_the_position_prior_load_unchanged(saved, tiny_seg_cfg, tmp_path):
    """A segmenter folder without ``textmask.prior`` (older weights) loads with a zero prior: same predictions."""
    from safetensors.torch import load_file, save_file

    from napari_amvlm.model.hub import load_segmenter, save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    torch.manual_seed(3)
    seg = TextGuidedSegmenter(load_model(saved), tiny_seg_cfg).eval()
    out = save_segmenter(seg, tmp_path / "seg", amvlm_source=saved)
    weights = out / "segmenter.safetensors"
    state = load_file(weights)
    assert "textmask.prior" in state
    save_file({k: v for k, v in state.items() if k != "textmask.prior"}, weights)
    old = load_segmenter(out)
    x = torch.rand(1, 3, 32, 32)
    text = ["lower left lung"]
    with torch.no_grad():
        tok, grid, sent = seg.frozen_embeddings(x, text)
        a = seg.textmask(tok, grid, sent, (32, 32), text).logits
        b = old.textmask(tok, grid, sent, (32, 32), text).logits
    assert torch.equal(old.textmask.prior, torch.zeros_like(old.textmask.prior)) and torch.allclose(a, b)
