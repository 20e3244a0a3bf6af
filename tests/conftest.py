"""Shared fixtures: tiny model configs (seconds on a CPU) and the real data folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_DATA = ROOT / "sample_data"


def shared_data(*parts: str) -> Path:
    """A folder of the real data next to the repository, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path} (see GUIDE §3)")
    return path


@pytest.fixture
def tiny_cfg():
    from napari_amvlm.config import AMVLMConfig, HeadConfig, TextConfig, VisionConfig

    return AMVLMConfig(
        vision=VisionConfig(image_size=32, patch_size=8, width=32, depth=1, heads=2),
        text=TextConfig(trainable_layers=1, max_length=24),
        head=HeadConfig(embed_dim=16, hidden_dim=32, pdt_heads=2),
    )


@pytest.fixture
def tiny_amvlm_dir(tiny_cfg, tmp_path):
    """A tiny, randomly initialised AMVLM saved as a model folder (stands in for a pre-trained one)."""
    import torch

    from napari_amvlm.model.amvlm import AMVLM
    from napari_amvlm.model.hub import save_model

    torch.manual_seed(0)
    folder = tmp_path / "amvlm-tiny"
    save_model(AMVLM(tiny_cfg).eval(), folder)
    return folder


@pytest.fixture
def tiny_seg_cfg():
    from napari_amvlm.config import SegmenterConfig, TextMaskConfig, UNetConfig

    return SegmenterConfig(unet=UNetConfig(base=4, levels=3), textmask=TextMaskConfig(hidden=8, upsample=4))


@pytest.fixture
def tiny_seg_dir(tiny_cfg, tiny_seg_cfg, tmp_path):
    """A tiny model folder in the trained format (AMVLM + segmenter), random weights: loads in a second."""
    import torch

    from napari_amvlm.model.amvlm import AMVLM
    from napari_amvlm.model.hub import save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    torch.manual_seed(0)
    return save_segmenter(TextGuidedSegmenter(AMVLM(tiny_cfg).eval(), tiny_seg_cfg), tmp_path / "tiny-seg")


def qata_sample_copy(dest: Path, n: int) -> list[dict[str, str]]:
    """Copy the shipped QaTa sample to ``dest`` keeping only its first ``n`` CSV rows; returns those rows."""
    import csv
    import shutil

    shutil.copytree(SAMPLE_DATA / "qata", dest)
    rows = [{k: r[k] for k in ("image", "mask", "text")} for r in csv.DictReader(open(dest / "text.csv"))][:n]
    with open(dest / "text.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "mask", "text"])
        w.writeheader()
        w.writerows(rows)
    return rows


BAD_IMAGES = ("truncated PNG", "not an image")  # the unreadable inputs every entry point is tested with
BAD_REASONS = {"truncated PNG": "the image file is truncated", "not an image": "not an image file"}


def make_bad_image(path: Path, kind: str) -> Path:
    """Write an unreadable image at ``path``: a real PNG cut in half, or a text file with an image's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated PNG":
        good = next((SAMPLE_DATA / "qata" / "images").glob("*.png")).read_bytes()
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_text("patient notes, not pixels\n")
    return path


def assert_one_line_error(code: int, err: str, path: Path, kind: str) -> None:
    """The command failed with one line that names the file and the reason (no traceback)."""
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    assert str(path) in lines[0] and BAD_REASONS[kind] in lines[0], lines[0]
