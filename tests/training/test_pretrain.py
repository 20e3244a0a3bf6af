"""`amvlm pretrain` end to end on ten real QaTa pairs with a tiny model: checkpoint, reload, resume, kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from napari_amvlm.cli import main
from napari_amvlm.config import to_dict
from napari_amvlm.model.hub import load_model, trained_state

from ..conftest import SAMPLE_DATA

QATA = SAMPLE_DATA / "qata"  # ten real QaTa-COV19 training pairs shipped with the package


@pytest.fixture
def tiny_json(tiny_cfg, tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(to_dict(tiny_cfg)))
    return path


def _pretrain(out, tiny_json, *extra):
    args = ["pretrain", "--data", str(QATA), "--out", str(out), "--model-config", str(tiny_json),
            "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--log-every", "1", *extra]
    return main(args)


def test_two_steps_write_a_checkpoint_that_reloads_bit_exactly(tmp_path, tiny_json, capsys):
    out = tmp_path / "m"
    assert _pretrain(out, tiny_json, "--max-steps", "2") == 0
    printed = capsys.readouterr().out
    assert "step 2/2" in printed and "css=" in printed and "icl=" in printed and "img/s" in printed
    saved = load_file(str(out / "model.safetensors"))
    model = load_model(out)
    reloaded = trained_state(model)
    assert set(saved) == set(reloaded)
    for k, v in saved.items():
        assert torch.equal(v, reloaded[k]), k
    # the weights were trained: they differ from a fresh initialisation with the same seed
    torch.manual_seed(0)
    from napari_amvlm.model.amvlm import AMVLM

    fresh = trained_state(AMVLM(model.cfg))
    assert any(not torch.equal(fresh[k], saved[k]) for k in saved if k.startswith("vision."))
    assert not any(".tmp" in p.name for p in out.iterdir())


def test_resume_continues_exactly(tmp_path, tiny_json):
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert _pretrain(straight, tiny_json, "--max-steps", "4") == 0
    assert _pretrain(resumed, tiny_json, "--max-steps", "2") == 0
    assert _pretrain(resumed, tiny_json, "--max-steps", "4", "--resume") == 0
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_kill_leaves_loadable_files_and_resumes(tmp_path, tiny_json):
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "napari_amvlm.cli", "pretrain", "--data", str(QATA), "--out", str(out),
           "--model-config", str(tiny_json), "--batch-size", "2", "--epochs", "50", "--device", "cpu",
           "--checkpoint-every", "1", "--log-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    seen = 0
    for line in proc.stdout:
        if "step " in line:
            seen += 1
        if seen >= 7 or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert seen >= 7
    load_model(out)  # the last complete model is readable, never a half-written file
    assert _pretrain_resume_steps(out, tiny_json) > 0


def _pretrain_resume_steps(out, tiny_json):
    from napari_amvlm.training.checkpoint import RESUME_NAME, load_resume

    _, _, meta = load_resume(out / RESUME_NAME)
    step = int(meta["step"])
    args = ["pretrain", "--data", str(QATA), "--out", str(out), "--model-config", str(tiny_json),
            "--batch-size", "2", "--epochs", "50", "--device", "cpu", "--resume", "--max-steps", str(step + 1)]
    assert main(args) == 0
    _, _, meta2 = load_resume(out / RESUME_NAME)
    return int(meta2["step"]) - step


def test_stem_starts_from_a_trained_unet_and_stays_fixed(tmp_path, tiny_cfg, tiny_amvlm_dir):
    """--init-stem copies the segmenter's U-Net encoder into the hybrid tower; --freeze-stem keeps it there."""
    from napari_amvlm.config import SegmenterConfig, UNetConfig
    from napari_amvlm.model.hub import load_model as load_amvlm
    from napari_amvlm.model.hub import save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    torch.manual_seed(1)
    seg = TextGuidedSegmenter(load_amvlm(tiny_amvlm_dir), SegmenterConfig(unet=UNetConfig(base=4, levels=4,
                                                                                           downsample=2)))
    for p in seg.unet.parameters():
        p.data.normal_()
    save_segmenter(seg, tmp_path / "seg", amvlm_source=tiny_amvlm_dir)
    cfg = to_dict(tiny_cfg)
    cfg["vision"].update(unet_stem=True, stem_base=4, stem_downsample=2)  # 32 px, patch 8: 16 -> 8 -> 4
    path = tmp_path / "hybrid.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "m"
    assert main(["pretrain", "--data", str(QATA), "--out", str(out), "--model-config", str(path), "--batch-size", "4",
                 "--epochs", "1", "--max-steps", "2", "--device", "cpu", "--init-stem", str(tmp_path / "seg"),
                 "--freeze-stem"]) == 0
    model = load_model(out)
    unet = seg.unet.state_dict()
    for k, v in model.vision.stem.encoders.state_dict().items():
        assert torch.equal(v, unet[f"encoders.{k}"]), k  # weights and BatchNorm statistics as trained, untouched by stage 1
    fresh = _fresh_vision(model.cfg)
    assert not torch.equal(model.vision.pos_embed, fresh.pos_embed)  # the rest did train,
    assert not torch.equal(model.vision.stem.proj.weight, fresh.stem.proj.weight)  # the new token projection too


def _fresh_vision(cfg):
    from napari_amvlm.model.amvlm import AMVLM

    torch.manual_seed(0)
    return AMVLM(cfg).vision
