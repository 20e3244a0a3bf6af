"""The guard of a Retrain round: new weights go in use only when they do at least as well as the weights in use on
corrected images the round held back (never trained on); the project records both figures either way."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.inference import Segmenter
from napari_amvlm.model.hub import load_segmenter, save_segmenter
from napari_amvlm.project import Project
from napari_amvlm.training.loop import corrected_dice, loop_history
from napari_amvlm.training.round_guard import choose_heldback, heldback_count
from napari_amvlm.training.round_models import latest_round_model
from napari_amvlm.training.rounds import JobState, RetrainJob, RetrainSettings

from ..conftest import ROOT, SAMPLE_DATA

BUNDLED = ROOT / "models" / "amvlm-qata"


def test_heldback_count_and_draw() -> None:
    assert [heldback_count(n, 0.2, 20) for n in (2, 3, 5, 6, 10, 11, 50, 500)] == [1, 1, 1, 2, 2, 3, 10, 20]
    with pytest.raises(ValueError, match="at least 2 corrected images"):
        heldback_count(1, 0.2, 20)
    ids = [f"img{k}" for k in range(10)]
    first = choose_heldback(ids, 1, 0.2, 20)
    assert first == choose_heldback(list(reversed(ids)), 1, 0.2, 20)  # a function of the set and the round
    assert len(first) == 2 and set(first) <= set(ids)
    assert len({tuple(choose_heldback(ids, r, 0.2, 20)) for r in range(1, 8)}) > 1  # each round draws its own


@pytest.fixture(scope="module")
def qata_project(tmp_path_factory) -> Project:
    """Five real sample X-rays, each with its own sentence as the prompt, all corrected with their expert masks."""
    import csv

    from napari_amvlm.io import read_mask

    rows = list(csv.DictReader(open(SAMPLE_DATA / "qata" / "text.csv", newline="", encoding="utf-8")))[:5]
    p = Project.create(tmp_path_factory.mktemp("guard") / "proj")
    for row in rows:
        image = SAMPLE_DATA / "qata" / row["image"]
        (image_id,) = p.add_images([image])
        p.add_prompt(image_id, row["text"], author="tester")
        p.mark_corrected(image_id, read_mask(SAMPLE_DATA / "qata" / row["mask"]), author="tester")
    return p


def _damaged_copy(src: Path, out: Path) -> Path:
    """The model with its U-Net's and text mask's last biases pushed to -50: it finds nothing anywhere."""
    import torch

    seg = load_segmenter(src)
    with torch.no_grad():
        seg.unet.head.bias.fill_(-50.0)
        seg.textmask.bias.fill_(-50.0)
    return save_segmenter(seg, out, amvlm_source=src)


def _fake_round(job: RetrainJob, candidate: Path, monkeypatch) -> None:
    """Run the round's real process machinery with a child that only copies ``candidate`` to the round's output
    folder and reports success (what a training run that produced these weights would leave)."""
    code = ("import json, shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True); "
            "print(json.dumps({'amvlm_event': 'done', 'steps': 1, 'wall_s': 0.1, 'out': sys.argv[2]}))")
    monkeypatch.setattr(job, "command", lambda: [sys.executable, "-c", code, str(candidate), str(job.out_dir)])
    job.start()
    assert job.wait(timeout=60) is JobState.SUCCEEDED, job.message


def test_damaged_weights_are_not_installed(qata_project, tmp_path, monkeypatch) -> None:
    damaged = _damaged_copy(BUNDLED, tmp_path / "damaged")
    job = RetrainJob(qata_project, BUNDLED, RetrainSettings(device="cpu"))
    _fake_round(job, damaged, monkeypatch)
    result = job.finalize("cpu")
    assert not result.installed
    assert "kept the previous weights" in result.message and "held-back" in result.message
    v = job.verdict
    assert v.mean_after < 0.05 < 0.5 < v.mean_before  # the damage is real, the weights in use are good
    assert not result.folder.exists() and not list((qata_project.root / "models").glob("round-*"))
    again = Project.open(qata_project.root)
    (rnd,) = again.rounds()
    assert not rnd.installed and rnd.images["heldback"] == job.heldback
    assert rnd.metrics["heldback_dice_before"] == pytest.approx(v.mean_before)
    assert rnd.metrics["heldback_dice_after"] == pytest.approx(v.mean_after)
    assert latest_round_model(again) is None  # the next prompt still uses the bundled model
    (row,) = loop_history(again)
    assert not row.installed and row.dice_in_use == pytest.approx(100 * v.mean_before)


def test_weights_as_good_as_those_in_use_are_installed(qata_project, tmp_path, monkeypatch) -> None:
    same = tmp_path / "same"
    shutil.copytree(BUNDLED, same)
    job = RetrainJob(qata_project, BUNDLED, RetrainSettings(device="cpu"))
    _fake_round(job, same, monkeypatch)
    result = job.finalize("cpu")
    assert result.installed and job.verdict.mean_after == pytest.approx(job.verdict.mean_before)
    assert latest_round_model(Project.open(qata_project.root)) == result.folder
    seg = Segmenter.from_folder(result.folder)
    assert corrected_dice(seg, qata_project, job.heldback) == pytest.approx(job.verdict.dice_after)


@pytest.mark.slow
def test_a_real_round_never_lowers_the_heldback_dice_of_the_weights_in_use(tmp_path) -> None:
    """A short real round of the default recipe (fixed seed) on real X-rays, from the bundled model."""
    import csv

    from napari_amvlm.io import read_mask

    rows = list(csv.DictReader(open(SAMPLE_DATA / "qata" / "text.csv", newline="", encoding="utf-8")))
    p = Project.create(tmp_path / "proj")
    for k, row in enumerate(rows):
        (image_id,) = p.add_images([SAMPLE_DATA / "qata" / row["image"]])
        p.add_prompt(image_id, row["text"], author="tester")
        if k < 6:
            p.mark_corrected(image_id, read_mask(SAMPLE_DATA / "qata" / row["mask"]), author="tester")
    job = RetrainJob(p, BUNDLED, RetrainSettings(device="cpu", max_steps=6, seed=0))
    job.start()
    assert job.wait(timeout=1800) is JobState.SUCCEEDED, job.message
    result = job.finalize("cpu")
    in_use = latest_round_model(Project.open(p.root)) or BUNDLED
    assert (in_use == result.folder) == result.installed
    before = np.mean(corrected_dice(Segmenter.from_folder(BUNDLED), p, job.heldback))
    after = np.mean(corrected_dice(Segmenter.from_folder(in_use), p, job.heldback))
    assert after >= before
    assert json.loads(json.dumps(Project.open(p.root).rounds()[0].metrics))["heldback_n"] == len(job.heldback)
