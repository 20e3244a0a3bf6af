"""The ``amvlm`` command explains itself (a description on every command, help on every flag, an example when run
bare, the side convention in ``segment --help``), and ``amvlm segment`` warns about what it ignored of a prompt,
reads left/right in the convention asked for, and refuses images it cannot segment meaningfully."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from napari_amvlm.cli import main
from napari_amvlm.cli.main import build_parser
from napari_amvlm.inference.prompts import VOCABULARY_NAME, folder_sentences, read_vocabulary, words_of

from ..conftest import SAMPLE_DATA

IMAGE = SAMPLE_DATA / "qata" / "images" / "covid_2804.png"


def _commands(parser: argparse.ArgumentParser, path: str = "amvlm"):
    """(name, parser) of every command and sub-command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _commands(sub, f"{path} {name}")


def test_every_command_has_a_description_and_every_flag_help():
    missing = []
    for name, parser in _commands(build_parser()):
        if not parser.description:
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction) and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, "\n".join(missing)


def test_bare_amvlm_lists_the_commands_with_an_example(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(f"    {c}" in out for c in ("pretrain", "train", "evaluate", "segment", "vocabulary", "project"))
    assert "example" in out and "amvlm segment --model models/amvlm-qata --image sample_data" in out


def test_segment_help_states_the_side_convention_and_the_modes(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--sides {image,patient}" in out
    assert "image: left/right are the image's sides as displayed" in out
    assert "Default: patient when the file says how the patient lies, else image" in out
    assert "the patient's left lung is on the image's right" in out
    assert "fused (default)" in out and "segmenter: the U-Net alone" in out


@pytest.fixture
def model(tiny_seg_dir: Path) -> Path:
    (tiny_seg_dir / VOCABULARY_NAME).write_text("lower\nleft\nright\nlung\n")
    return tiny_seg_dir


def _segment(capsys, model: Path, image: Path, text: str, *extra: str) -> tuple[int, str, str]:
    code = main(["segment", "--model", str(model), "--image", str(image), "--text", text, "--out",
                 str(image.parent / "mask.png"), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_segment_warns_about_ignored_words_and_still_writes_the_mask(capsys, model, tmp_path):
    image = tmp_path / "x.png"
    skio.imsave(image, skio.imread(IMAGE), check_contrast=False)
    code, out, err = _segment(capsys, model, image, "肺部感染 opacity in the lower left lung " + "lung " * 40)
    assert code == 0 and (tmp_path / "mask.png").is_file() and "foreground pixels" in out
    lines = err.splitlines()
    assert lines[0] == ("amvlm segment: warning: ignored words not in the Latin alphabet (the model reads English): "
                        "'肺部感染'")
    assert lines[1] == "amvlm segment: warning: ignored words the model was not trained on: 'opacity', 'in', 'the'"
    assert lines[2].startswith("amvlm segment: warning: prompt cut at the model's 24-token limit; ignored 21 words")


def test_segment_reads_patient_sides_as_the_mirror_image(capsys, model, tmp_path):
    image = tmp_path / "x.png"
    skio.imsave(image, skio.imread(IMAGE), check_contrast=False)
    code, out, err = _segment(capsys, model, image, "lower right lung", "--sides", "patient", "--no-postprocess")
    assert code == 0 and err == ""
    assert "the model read the prompt as: 'lower left lung' (left/right: the image's sides)" in out
    patient = skio.imread(tmp_path / "mask.png")
    assert _segment(capsys, model, image, "lower left lung", "--no-postprocess")[0] == 0
    assert np.array_equal(skio.imread(tmp_path / "mask.png"), patient)


@pytest.mark.parametrize("data, message", [
    (np.full((64, 64), np.nan, np.float32), "4,096 of 4,096 pixels are NaN or infinite"),
    (np.zeros((4, 4), np.uint8), "the image is 4x4 pixels; the model needs at least 8x8"),
    (np.full((64, 64), 9, np.uint16), "the image is constant (every pixel is 9)"),
], ids=["nan", "tiny", "constant"])
def test_segment_refuses_images_without_a_meaningful_answer(capsys, model, tmp_path, data, message):
    image = tmp_path / "x.tif"
    skio.imsave(image, data, check_contrast=False, photometric="minisblack")
    code, _, err = _segment(capsys, model, image, "lower left lung")
    assert code == 1 and err == f"amvlm segment: error: {message}: there is nothing to segment\n" \
        if "constant" in message else code == 1 and err.startswith(f"amvlm segment: error: {message}")
    assert not (tmp_path / "mask.png").exists()


def test_vocabulary_command_and_train_write_the_words(capsys, tiny_seg_dir, tmp_path):
    before = read_vocabulary(tiny_seg_dir) or frozenset()
    expected = before | {w for s in folder_sentences(SAMPLE_DATA / "qata") for w in words_of(s)}
    assert main(["vocabulary", "--model", str(tiny_seg_dir), "--data", str(SAMPLE_DATA / "qata")]) == 0
    assert f"vocabulary.txt: {len(expected)} words" in capsys.readouterr().out
    assert read_vocabulary(tiny_seg_dir) == expected and {"upper", "lower", "bilateral"} <= expected
    assert main(["vocabulary", "--model", str(tmp_path), "--data", str(SAMPLE_DATA / "qata")]) == 1
    assert "not an AMVLM model folder" in capsys.readouterr().err
