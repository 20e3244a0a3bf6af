"""A model folder from anyone is bounded before anything is built: every size its configs declare has a range,
the parts are counted without allocating, config values must have their type, and its vocabulary, tokenizer and
weights files have a size limit. The commands a user runs refuse such a folder with one line, quickly, in a
memory-limited process started from a folder holding a ``napari_amvlm`` package that must never be imported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from napari_amvlm.model.hub import ModelLoadError, read_config, read_segmenter
from napari_amvlm.model.limits import MAX_WEIGHTS_BYTES

from .._untrusted import Decoys, assert_one_clear_line, limited_memory, run_amvlm, run_python, shadow_cwd
from ..conftest import SAMPLE_DATA

IMAGE = min((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def crafted(src: Path, dest: Path, file: str, change) -> Path:
    """A copy of the model folder ``src`` whose ``file`` (config.json or segmenter.json) ``change`` edited."""
    shutil.copytree(src, dest)
    path = dest / file
    data = json.loads(path.read_text())
    change(data["model"] if file == "config.json" else data["segmenter"])
    path.write_text(json.dumps(data))
    return dest


# (file, change, words of the error)
SIZES = {
    "depth 1000000": ("config.json", lambda c: c["vision"].update(depth=1_000_000),
                      "VisionConfig.depth is 1000000; it must be from 1 to 48"),
    "width 8192": ("config.json", lambda c: c["vision"].update(width=8192, heads=8),
                   "VisionConfig.width is 8192; it must be from 4 to 2048"),
    "levels 40": ("segmenter.json", lambda c: c["unet"].update(levels=40),
                  "UNetConfig.levels is 40; it must be from 1 to 8"),
    "ViT of 2.4 G parameters": ("config.json", lambda c: c["vision"].update(width=2048, depth=48, heads=16),
                                "parameters, more than the 600,000,000"),
    "U-Net of 1.4 G parameters": ("segmenter.json", lambda c: c["unet"].update(base=256, levels=8),
                                  "parameters, more than the 600,000,000"),
    "16384 patch tokens": ("config.json", lambda c: c["vision"].update(image_size=1024, patch_size=8),
                           "128x128 patches, more than the 4096"),
    "field of 1 pixel": ("segmenter.json", lambda c: c.update(field=1),
                         "SegmenterConfig.field is 1; it must be 0 or from the model's input size 32"),
    "within bounds": ("config.json", lambda c: c["vision"].update(dropout=0), None),  # loads as before
    "depth as text": ("config.json", lambda c: c["vision"].update(depth="4"),
                      "VisionConfig.depth must be an integer, not '4'"),
    "embed_dim null": ("config.json", lambda c: c["head"].update(embed_dim=None),
                       "HeadConfig.embed_dim must be an integer, not None"),
    "mean of two": ("config.json", lambda c: c["vision"].update(mean=[0.5, 0.5]),
                    "VisionConfig.mean must be a list of 3 numbers"),
    "fusion as text": ("segmenter.json", lambda c: c.update(fusion_lambda="half"),
                       "SegmenterConfig.fusion_lambda must be a number"),
}  # fmt: skip


@pytest.fixture
def place(tmp_path):
    cwd, marker = shadow_cwd(tmp_path)
    return {"cwd": cwd, "marker": marker, "decoys": Decoys(tmp_path / "decoys"), "tmp": tmp_path}


def test_sizes_and_types_are_checked_before_building(tiny_seg_dir, place):
    """Every crafted folder in one memory-limited process: each refused with its words (or loaded, when within
    bounds)."""
    folders = {case: crafted(tiny_seg_dir, place["tmp"] / f"m{k}", file, change)
               for k, (case, (file, change, _)) in enumerate(SIZES.items())}  # fmt: skip
    code = (
        "from napari_amvlm.model.hub import load_segmenter, ModelLoadError\n"
        f"for case, folder in {[(c, str(f)) for c, f in folders.items()]!r}:\n"
        "    try:\n        load_segmenter(folder)\n        print(case, '|', 'loaded', flush=True)\n"
        "    except ModelLoadError as err:\n"
        "        print(case, '|', str(err).replace(chr(10), ' '), flush=True)\n"
    )
    proc = run_python(code, place["cwd"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = dict(line.split(" | ", 1) for line in proc.stdout.splitlines())
    for case, (_, _, words) in SIZES.items():
        if words is None:
            assert results[case] == "loaded"
            continue
        assert words in results[case] and str(folders[case]) in results[case], (case, results[case])
    assert not place["marker"].exists()


@pytest.mark.parametrize("case", ["depth 1000000", "width 8192", "levels 40"])
def test_segment_refuses_a_model_that_declares_gigabytes(tiny_seg_dir, place, case):
    file, change, words = SIZES[case]
    model = crafted(tiny_seg_dir, place["tmp"] / "crafted", file, change)
    out = place["tmp"] / "mask.png"
    proc = run_amvlm("segment", "--model", model, "--image", IMAGE, "--text", "left lung", "--out", out,
                     cwd=place["cwd"])  # fmt: skip
    assert_one_clear_line(proc, words)
    assert not out.exists() and not place["marker"].exists()
    place["decoys"].assert_untouched()


def _sparse(path: Path, size: int) -> None:
    with open(path, "ab") as f:
        f.truncate(size)


def test_a_189_mb_vocabulary_is_refused_unread(tiny_seg_dir, place):
    model = place["tmp"] / "m"
    shutil.copytree(tiny_seg_dir, model)
    _sparse(model / "vocabulary.txt", 189 << 20)
    out = place["tmp"] / "mask.png"
    proc = run_amvlm("segment", "--model", model, "--image", IMAGE, "--text", "left lung", "--out", out,
                     cwd=place["cwd"])  # fmt: skip
    assert_one_clear_line(proc, "vocabulary.txt is 189 MiB, more than the 8 MiB")
    assert not out.exists() and not place["marker"].exists()
    place["decoys"].assert_untouched()


def test_text_encoder_files_are_bounded(tiny_seg_dir, place):
    from napari_amvlm.model.text import default_text_encoder_path

    text = place["tmp"] / "text"
    shutil.copytree(default_text_encoder_path(), text)
    _sparse(text / "vocab.txt", 100 << 20)
    model = crafted(tiny_seg_dir, place["tmp"] / "m1", "config.json", lambda c: c["text"].update(path=str(text)))
    with pytest.raises(ValueError, match="vocab.txt is 100 MiB, more than the 32 MiB a text encoder's file"):
        _load(model)
    (text / "vocab.txt").unlink()
    shutil.copy(default_text_encoder_path() / "vocab.txt", text / "vocab.txt")
    cfg = json.loads((text / "config.json").read_text())
    (text / "config.json").write_text(json.dumps({**cfg, "vocab_size": 10_000_000, "hidden_size": 4096}))
    with pytest.raises(ValueError, match="parameters, more than"):
        _load(model)


def _load(folder: Path):
    from napari_amvlm.model.hub import load_segmenter

    with limited_memory():
        return load_segmenter(folder)


def test_weights_files_are_bounded_before_reading(tiny_seg_dir, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_seg_dir, model)
    (model / "segmenter.safetensors").unlink()
    _sparse(model / "segmenter.safetensors", MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(ModelLoadError, match="more than the .* MiB a weights file may have"), limited_memory():
        read_segmenter(model)


def test_configs_that_are_not_json_objects_are_one_clear_error(tiny_seg_dir, tmp_path):
    for k, text in enumerate(("[" * 100_000, '{"format": "napari-amvlm/amvlm-v1", "model": []}', "x" * 10)):
        model = tmp_path / f"m{k}"
        shutil.copytree(tiny_seg_dir, model)
        (model / "config.json").write_text(text)
        with pytest.raises(ModelLoadError, match=str(model)):
            read_config(model)


def test_a_text_encoder_with_pickled_weights_only_is_refused(tiny_seg_dir, tmp_path):
    """Weights are read from safetensors files only: a text encoder folder holding a pickle is not loaded."""
    import torch

    from napari_amvlm.model.text import default_text_encoder_path

    text = tmp_path / "text"
    shutil.copytree(default_text_encoder_path(), text)
    (text / "model.safetensors").unlink()
    ran = tmp_path / "PAYLOAD-RAN"
    torch.save({"x": _Payload(ran)}, text / "pytorch_model.bin")
    model = crafted(tiny_seg_dir, tmp_path / "m", "config.json", lambda c: c["text"].update(path=str(text)))
    with pytest.raises(ValueError, match=f"cannot load the text encoder in {text}"):
        _load(model)
    assert not ran.exists(), "the pickled payload ran"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
