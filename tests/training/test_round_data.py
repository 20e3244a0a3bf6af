"""A retraining round's data: the project exported as an image,mask,text training folder."""

from __future__ import annotations

import csv

import numpy as np

from napari_amvlm.training.round_data import prepare_training_folder


def test_prepare_training_folder(project, tmp_path):
    ids = project.image_ids()
    ts = prepare_training_folder(project, tmp_path / "data")
    assert ts.labeled == [ids[0], ids[3]] and ts.unlabeled == [ids[1]] and ts.skipped == [ids[2]]
    with open(tmp_path / "data" / "text.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == ["lower left lung", "lower right lung", "bilateral pulmonary infection"]
    assert rows[0]["mask"] and not rows[1]["mask"] and rows[2]["mask"]
    from skimage import io

    assert set(np.unique(io.imread(tmp_path / "data" / rows[0]["mask"]))) <= {0, 255}
    ts2 = prepare_training_folder(project, tmp_path / "data2", default_prompt="lung")
    assert ts2.skipped == [] and len(ts2.unlabeled) == 2
    ts3 = prepare_training_folder(project, tmp_path / "data3", exclude=[ids[3], ids[1]])  # held back: left out
    assert ts3.labeled == [ids[0]] and ts3.unlabeled == [] and ts3.skipped == [ids[2]]


def test_prompts_in_the_patient_convention_train_in_the_image_convention(project, tmp_path):
    ids = project.image_ids()
    project.add_prompt(ids[0], "upper right lung", author="radiologist", sides="patient")
    prepare_training_folder(project, tmp_path / "data")
    with open(tmp_path / "data" / "text.csv", newline="") as f:
        texts = {r["image"]: r["text"] for r in csv.DictReader(f)}
    assert texts[f"images/{ids[0]}.tif"] == "upper left lung"  # the patient's right lung: the image's left
    assert texts[f"images/{ids[1]}.tif"] == "lower right lung"
    assert [(p.text, p.sides) for p in project.prompts(ids[0])][-1] == ("upper right lung", "patient")
