"""A retraining round of a project from anyone stays inside its folders and runs only the installed package: image
ids that are paths or options never reach a file name or the training process's options, and the process cannot
import a ``napari_amvlm`` from the folder the viewer was started in, even with ``.`` on PYTHONPATH."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.cli.main import build_parser
from napari_amvlm.project import CorruptProjectError, Project
from napari_amvlm.training.round_data import prepare_training_folder
from napari_amvlm.training.rounds import JobState, RetrainJob, RetrainSettings

from .._untrusted import Decoys, edit_manifest, shadow_cwd, tree_digest


def _settings(**kw) -> RetrainSettings:
    return RetrainSettings(**{"epochs": 1, "labeled_batch": 2, "unlabeled_batch": 2, "device": "cpu",
                              "cpu_threads": 1, **kw})  # fmt: skip


@pytest.mark.parametrize("image_id", ["../../../../tmp/x", "--out=..", "-P"])
def test_a_project_whose_ids_are_paths_or_options_never_reaches_a_round(project, tmp_path, image_id):
    first = project.image_ids()[0]
    edit_manifest(project.root, lambda m: m["images"].update({image_id: {**m["images"].pop(first), "id": image_id}}))
    decoys = Decoys(tmp_path / "decoys")
    with pytest.raises(CorruptProjectError, match="must be usable as a file name"):
        Project.open(project.root)
    decoys.assert_untouched()


def test_a_round_of_a_project_whose_id_became_a_path_writes_nothing_outside(project, tiny_seg_dir, tmp_path):
    """The reported case end to end: the widget holds a project open; its manifest on disk now names an image
    ``../../../../<somewhere>/x``, which from the round's ``images`` and ``masks`` folders is ``<somewhere>/x``.
    Retrain refreshes the project and refuses it, naming the rule, before any file is written."""
    import tempfile

    second = project.image_ids("corrected")[1]  # (the fixture's project has two corrected images)
    labels = {i: np.asarray(project.read_mask(i, "human")[...]).tobytes() for i in project.image_ids("corrected")}
    assert len(labels) >= 2
    humans = {project.mask_record(i, "human").array for i in labels}
    digests = {a: tree_digest(project.root / "arrays" / a) for a in humans}
    decoys = Decoys(tmp_path / "decoys")
    # from <tmp>/amvlm-round-XXXX/data/images (where prepare() writes) up to "/", then down to tmp_path
    temp = Path(os.path.realpath(tempfile.gettempdir()))
    crafted = "../" * (len(temp.parts) + 2) + str(tmp_path).lstrip("/") + "/x"
    target = tmp_path / "x.tif"
    assert os.path.normpath(temp / "amvlm-round-0" / "data" / "images" / f"{crafted}.tif") == str(target)
    manifest, around = (project.root / "amvlm-project.json").read_bytes(), sorted(tmp_path.iterdir())
    edit_manifest(project.root, lambda m: m["images"].update({crafted: {**m["images"].pop(second), "id": crafted}}))
    job = RetrainJob(project, tiny_seg_dir, _settings(max_steps=1))  # what the widget's Retrain does
    rule = r"is refused: images\['\.\./\.\./.*\]\.id must be usable as a file name \(letters, digits"
    with pytest.raises(CorruptProjectError, match=rule):
        job.start()
    assert job.state is JobState.NEW and job.training_set is None
    assert not target.exists() and not target.with_suffix(".png").exists()
    assert sorted(tmp_path.iterdir()) == around
    assert not (project.root / "models").exists()
    decoys.assert_untouched()
    assert {a: tree_digest(project.root / "arrays" / a) for a in humans} == digests
    (project.root / "amvlm-project.json").write_bytes(manifest)
    reopened = Project.open(project.root)
    assert {i: np.asarray(reopened.read_mask(i, "human")[...]).tobytes() for i in labels} == labels


def test_the_export_checks_each_id_it_turns_into_a_file_name(project, tmp_path):
    """Defence in depth: even an id that got past the manifest's schema is refused before a file is written."""
    first = project.image_ids()[0]
    project._m["images"]["../escape"] = project._m["images"].pop(first)
    with pytest.raises(ValueError, match="the image id '../escape' cannot be used as a file name"):
        prepare_training_folder(project, tmp_path / "round" / "data")
    assert not (tmp_path / "escape.tif").exists() and not (tmp_path / "round").exists()


def test_ids_reach_the_training_process_as_names_never_as_options(project, tiny_seg_dir, tmp_path):
    job = RetrainJob(project, tiny_seg_dir, _settings())
    job.prepare()
    job.training_set.labeled = ["--out=..", "-P", "--labeled-fraction=1"]  # what a crafted id would look like
    job.out_dir = tmp_path / "models" / ".round-001.partial"
    cmd = job.command()
    assert cmd[1:4] == ["-P", "-m", "napari_amvlm.cli"]
    args = build_parser().parse_args(cmd[4:])
    assert args.out == str(job.out_dir.resolve()) and args.labeled and args.labeled_fraction is None
    assert args.names == ["--out=..", "-P", "--labeled-fraction=1"]
    job.discard()


def test_the_training_process_never_imports_from_the_viewers_folder(project, tiny_seg_dir, tmp_path, monkeypatch):
    cwd, marker = shadow_cwd(tmp_path)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PYTHONPATH", ".")  # even a relative entry: it names the round's own folder
    monkeypatch.setenv("UNRELATED_SECRET_TOKEN", "not for the child")
    labels = {i: np.asarray(project.read_mask(i, "human")[...]).tobytes() for i in project.image_ids("corrected")}
    job = RetrainJob(project, tiny_seg_dir, _settings(max_steps=1))
    assert "UNRELATED_SECRET_TOKEN" not in job._child_env() and job._child_env()["PYTHONPATH"] == "."
    job.start()
    assert job.wait(timeout=300) is JobState.SUCCEEDED, job.message
    assert not marker.exists(), "the training process imported napari_amvlm from the viewer's folder"
    job.finalize("cpu")
    reopened = Project.open(project.root)
    assert {i: np.asarray(reopened.read_mask(i, "human")[...]).tobytes() for i in labels} == labels


def test_a_models_folder_linked_elsewhere_gets_no_round(project, tiny_seg_dir, tmp_path):
    decoys = Decoys(tmp_path / "decoys")
    (project.root / "models").symlink_to(decoys.root)
    job = RetrainJob(project, tiny_seg_dir, _settings(max_steps=1))
    job.prepare()
    with pytest.raises(ValueError, match="must be a folder inside the project, not a link"):
        job.launch()
    job.discard()
    decoys.assert_untouched()
