"""The manifest's schema: every field of a received manifest is checked when it is read, so a wrong type is a
CorruptProjectError naming the field (never an AttributeError, TypeError or RecursionError later), and a manifest
larger than a project may have is refused before it is parsed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm._reader import napari_get_reader
from napari_amvlm.project import CorruptProjectError, Project
from napari_amvlm.project.manifest import MAX_MANIFEST_BYTES

from .._untrusted import assert_one_clear_line, edit_manifest, run_amvlm, shadow_cwd, tree_digest
from ._helpers import make_weights


@pytest.fixture
def full(tmp_path) -> Project:
    """A project with every kind of record: images, masks of each kind, a history, prompts, models, a round."""
    p = Project.create(tmp_path / "p.amvlm")
    a, b = (p.add_image(np.full((20, 24), k, np.uint8), name=f"im{k}")[0] for k in (1, 2))
    model = p.add_model(make_weights(tmp_path / "m" / "model.safetensors")).sha256
    p.write_prediction(a, np.ones((20, 24), np.uint8), model=model, prompt="left lung")
    p.write_pseudo_label(b, np.ones((20, 24), np.uint8), model=model)
    p.mark_corrected(a, np.ones((20, 24), np.uint8), author="alice")
    p.mark_corrected(a, np.zeros((20, 24), np.uint8), author="bob")
    p.write_prediction(a, np.zeros((20, 24), np.uint8), model=model)  # the first prediction goes to the trash
    p.record_round(model=model, settings={"epochs": 1}, seed=0, metrics={"dice": 0.5}, images={"labeled": [a]})
    return p


def _first(m: dict) -> dict:
    return next(iter(m["images"].values()))


# (field named in the error, change made to the manifest)
WRONG = {
    "generation": lambda m: m.update(generation="7"),
    "images": lambda m: m.update(images=[]),
    "rounds": lambda m: m.update(rounds={}),
    ".shape": lambda m: _first(m).update(shape="40x48"),
    ".shape ": lambda m: _first(m).update(shape=[20, 24, 99]),
    ".rgb": lambda m: _first(m).update(rgb="no"),
    ".vmin": lambda m: _first(m).update(vmin=None),
    ".dtype": lambda m: _first(m).update(dtype="object"),
    ".n_slices": lambda m: _first(m).update(n_slices=True),
    ".sha256": lambda m: _first(m).update(sha256=5),
    ".prompts": lambda m: _first(m).update(prompts="left lung"),
    ".prompts[0].sides": lambda m: _first(m)["prompts"][0].update(sides="left"),
    ".prompts[0]": lambda m: _first(m)["prompts"][0].update(colour="red"),
    ".masks key": lambda m: _first(m)["masks"].update(other=_first(m)["masks"]["human"]),
    ".masks['human'].provenance.author_kind": lambda m: _first(m)["masks"]["human"]["provenance"].update(
        author_kind="robot"),
    ".masks['human'].provenance": lambda m: _first(m)["masks"]["human"].update(provenance=[]),
    ".masks['human'].dtype": lambda m: _first(m)["masks"]["human"].update(dtype="float64"),
    ".masks['human'].array": lambda m: _first(m)["masks"]["human"].update(
        array=_first(m)["masks"]["prediction"]["array"]),
    ".human_history[0]": lambda m: _first(m)["human_history"][0].pop("kind"),
    ".masks": lambda m: _first(m).update(masks=None),
    "models[": lambda m: next(iter(m["models"].values())).update(size="big"),
    "rounds[0].settings": lambda m: m["rounds"][0].update(settings=json.loads("[" * 40 + "]" * 40)),
    "rounds[0].model": lambda m: m["rounds"][0].update(model="0" * 64),
    "rounds[0].metrics": lambda m: m["rounds"][0]["metrics"].update(dice="high"),
    "trash[": lambda m: m["trash"].update({next(iter(m["trash"])): "soon"}),
    "the manifest": lambda m: m.update(extra=1),
}


@pytest.mark.parametrize("field", WRONG)
def test_a_wrong_type_is_refused_naming_the_field(full, field):
    edit_manifest(full.root, WRONG[field])
    before = tree_digest(full.root)
    for mode in ("r", "r+"):
        with pytest.raises(CorruptProjectError) as info:
            Project.open(full.root, mode=mode)
        assert field.strip() in str(info.value) and "amvlm-project.json is refused" in str(info.value), info.value
    assert tree_digest(full.root) == before


def test_the_full_project_passes_its_own_schema(full):
    assert len(Project.open(full.root)) == 2


def test_nesting_too_deep_for_the_parser_is_one_clear_line(tmp_path):
    p = Project.create(tmp_path / "p.amvlm")
    (p.root / "amvlm-project.json").write_text('{"format": "napari-amvlm-project", "x": ' + "[" * 100_000
                                               + "]" * 100_000 + "}")  # fmt: skip
    cwd, marker = shadow_cwd(tmp_path)
    proc = run_amvlm("project", "status", p.root, cwd=cwd)
    assert_one_clear_line(proc, "nested too deeply")
    assert napari_get_reader(str(p.root)) is None and not marker.exists()


def test_a_manifest_larger_than_a_project_may_have_is_refused_unread(tmp_path):
    p = Project.create(tmp_path / "p.amvlm")
    path = p.root / "amvlm-project.json"
    with open(path, "r+b") as f:  # a sparse file: no need to write the bytes
        f.truncate(MAX_MANIFEST_BYTES + 1)
    cwd, marker = shadow_cwd(tmp_path)
    proc = run_amvlm("project", "status", p.root, cwd=cwd)
    assert_one_clear_line(proc, "larger than the 64 MiB a project manifest may have")
    assert not marker.exists()


def test_a_project_never_grows_past_what_it_may_read_back(full, monkeypatch):
    from napari_amvlm.project import manifest

    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", len((full.root / "amvlm-project.json").read_bytes()) + 10)
    before = tree_digest(full.root)
    with pytest.raises(ValueError, match="would outgrow"):
        full.add_prompt(full.image_ids()[0], "a long prompt " * 10, author="alice")
    assert len(Project.open(full.root).prompts(full.image_ids()[0])) == 1
    assert tree_digest(full.root) == before


def test_names_added_from_files_are_safe_names(tmp_path):
    import imageio.v3 as iio

    p = Project.create(tmp_path / "p.amvlm")
    for name in ("-rf.png", "..hidden.png", "--out=x.png"):
        iio.imwrite(tmp_path / name, np.full((8, 8), len(name), np.uint8))
        (image_id,) = p.add_image(tmp_path / name)
        assert not p.image(image_id).name.startswith(("-", ".")) and not image_id.startswith(("-", "."))
    assert len(Project.open(p.root)) == 3


def test_is_project_never_raises(tmp_path: Path):
    for text in ("[" * 100_000, '"a string"', "{}", "\0\1"):
        (tmp_path / "amvlm-project.json").write_text(text)
        assert napari_get_reader(str(tmp_path)) is None
