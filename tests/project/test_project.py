"""The Project's masks: every field round-trips, writers check their inputs, and the human-label guard."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.project import MaskKind, Project, ProjectError, Provenance, Status

from ._helpers import array_dirs, binary, make_weights


def test_every_field_round_trips(project: Project, model: str, tmp_path: Path) -> None:
    image_id = project.add_image(np.zeros((32, 32), np.uint8), name="img")[0]
    assert project.status(image_id) is Status.UNLABELED
    pred = binary((32, 32), 1)
    p_rec = project.write_prediction(image_id, pred, model=model, prompt="left lung", round=2)
    assert project.status(image_id) is Status.PREDICTED
    pseudo = binary((32, 32), 2)
    s_rec = project.write_pseudo_label(image_id, pseudo, model=model, prompt="right lung", round=3)
    project.add_prompt(image_id, "lower left lung", author="alice")
    human = binary((32, 32), 3) * 255
    h_rec = project.mark_corrected(image_id, human, author="alice", note="fixed the border")
    assert project.status(image_id) is Status.CORRECTED
    model2 = project.add_model(make_weights(tmp_path / "m2" / "model.safetensors", 2.0), name="second")
    r = project.record_round(model=model2.sha256, base_model=model, settings={"lr": 3e-4, "epochs": 2},
                             seed=7, metrics={"dice": 0.5}, images={"labeled": [image_id]})  # fmt: skip

    again = Project.open(project.root)
    assert again.mask_record(image_id, "prediction") == p_rec
    assert again.mask_record(image_id, MaskKind.PSEUDO_LABEL) == s_rec
    assert again.mask_record(image_id, "human") == h_rec
    assert np.array_equal(again.read_mask(image_id, "prediction")[...], pred)
    assert np.array_equal(again.read_mask(image_id, "pseudo_label")[...], pseudo)
    assert np.array_equal(again.read_mask(image_id, "human")[...], human // 255)
    assert h_rec.foreground == 255 and h_rec.provenance.author == "alice"
    assert h_rec.provenance.author_kind == "person" and h_rec.provenance.note == "fixed the border"
    prov = p_rec.provenance
    assert (prov.prompt, prov.model, prov.round, prov.author_kind) == ("left lung", model, 2, "model")
    assert prov.author == f"model:{model[:12]}" and prov.time.endswith("+00:00")
    assert [p.text for p in again.prompts(image_id)] == ["left lung", "right lung", "lower left lung"]
    assert again.prompts(image_id)[2].author == "alice"
    assert again.models() == project.models() and [m.name for m in again.models()] == ["m1", "second"]
    assert again.rounds() == [r] and r.index == 1 and r.settings["lr"] == 3e-4 and r.seed == 7
    assert again.image(image_id) == project.image(image_id)
    assert again.counts()[Status.CORRECTED] == 1 and again.image_ids("corrected") == [image_id]


def test_writers_check_their_inputs(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    gen = project.generation
    with pytest.raises(ValueError, match="shape"):
        project.write_prediction(image_id, np.zeros((8, 8), np.uint8), model=model)
    with pytest.raises(ValueError, match="integer"):
        project.write_prediction(image_id, np.zeros((16, 16), np.float32), model=model)
    with pytest.raises(ValueError, match="negative"):
        project.mark_corrected(image_id, -np.ones((16, 16), np.int32), author="alice")
    with pytest.raises(ProjectError, match="unknown model"):
        project.write_prediction(image_id, np.zeros((16, 16), np.uint8), model="0" * 64)
    with pytest.raises(ProjectError, match="no image"):
        project.write_prediction("nope", np.zeros((16, 16), np.uint8), model=model)
    with pytest.raises(ValueError, match="JSON"):
        project.record_round(model=model, settings={"x": object()}, seed=0, metrics={})
    assert project.generation == gen and project.status(image_id) is Status.UNLABELED
    assert array_dirs(project) == {project.image(image_id).array}  # nothing left behind


def test_instance_labels_are_kept(project: Project) -> None:
    image_id = project.add_image(np.zeros((20, 20), np.uint16))[0]
    labels = np.zeros((20, 20), np.int64)
    labels[2:5, 2:5], labels[10:15, 10:12] = 3, 300
    rec = project.mark_corrected(image_id, labels, author="alice")
    assert rec.dtype == "uint16" and rec.foreground is None
    assert np.array_equal(project.read_mask(image_id, "human")[...], labels)


def test_automated_writers_cannot_overwrite_human_label(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    human = binary((16, 16), 7)
    h_rec = project.mark_corrected(image_id, human, author="alice")
    # every automated writer, with masks that differ from the human one
    project.write_prediction(image_id, 1 - human, model=model, prompt="x")
    project.write_pseudo_label(image_id, 1 - human, model=model)
    project.record_round(model=model, settings={}, seed=0, metrics={"dice": 0.1})
    for p in (project, Project.open(project.root)):
        assert p.mask_record(image_id, "human") == h_rec and p.status(image_id) is Status.CORRECTED
        assert np.array_equal(p.read_mask(image_id, "human")[...], human)
    # a model cannot pose as the author of a human label, nor write the human slot through the internals
    with pytest.raises(ValueError, match="person"):
        project.mark_corrected(image_id, 1 - human, author=f"model:{model[:12]}")
    with pytest.raises(ValueError, match="name of the person"):
        project.mark_corrected(image_id, 1 - human, author="  ")
    with pytest.raises(ProjectError, match="cannot write the human"), project.transaction():
        project._store_mask(image_id, MaskKind.HUMAN, 1 - human, Provenance.from_model(model))
    # and the automated writers have no parameter that could name the human slot
    for writer in (project.write_prediction, project.write_pseudo_label, project.record_round):
        assert not {"kind", "slot", "author", "human"} & set(inspect.signature(writer).parameters)
    assert np.array_equal(Project.open(project.root).read_mask(image_id, "human")[...], human)


def test_corrections_keep_history_and_accept_prediction(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    with pytest.raises(ProjectError, match="no prediction"):
        project.mark_corrected(image_id, author="alice")
    pred = binary((16, 16), 1)
    project.write_prediction(image_id, pred, model=model, prompt="left lung", round=1)
    first = project.mark_corrected(image_id, author="alice")  # accept the prediction as it is
    assert np.array_equal(project.read_mask(image_id, "human")[...], pred)
    assert first.provenance.prompt == "left lung" and first.provenance.model == model
    second = project.mark_corrected(image_id, 1 - pred, author="bob")
    again = Project.open(project.root)
    assert again.human_history(image_id) == [first] and again.mask_record(image_id, "human") == second
    assert np.array_equal(again.read_mask_record(first)[...], pred)  # the older drawing is still there


def test_the_edit_effort_counts_from_the_mask_the_person_was_shown(project: Project, model: str) -> None:
    """A person who corrected an earlier prompt's mask (not the latest prediction) changed what they were shown:
    ``started_from``; ``source`` records what made it."""
    image_id = project.add_image(np.zeros((20, 10), np.uint8))[0]
    shown, latest = binary((20, 10), 1), binary((20, 10), 2)
    project.write_prediction(image_id, latest, model=model, prompt="right lung")
    fixed = shown.copy()
    fixed[:5, :3] = 1 - fixed[:5, :3]  # 15 pixels flipped
    rec = project.mark_corrected(image_id, fixed, author="bob", started_from=shown,
                                 source={"prompt": "left lung", "model": model, "round": 1})
    again = Project.open(project.root).mask_record(image_id, "human").provenance
    assert rec.provenance == again and again.changed == pytest.approx(15 / 200) and again.edited
    assert again.prompt == "left lung" and again.model == model and again.round == 1
    untouched = project.mark_corrected(image_id, shown, author="bob", started_from=shown)
    assert untouched.provenance.changed == 0.0 and untouched.provenance.edited is False


def test_the_side_convention_of_a_prompt_is_recorded(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((32, 32), np.uint8), name="img")[0]
    rec = project.write_prediction(image_id, binary((32, 32), 1), model=model, prompt="left lung", sides="patient")
    assert rec.provenance.sides == "patient" and project.prompts(image_id)[-1].sides == "patient"
    accepted = project.mark_corrected(image_id, author="alice")  # accepting the prediction keeps its convention
    assert accepted.provenance.prompt == "left lung" and accepted.provenance.sides == "patient"
    project.add_prompt(image_id, "right lung", author="alice")
    again = Project.open(project.root)
    assert [(p.text, p.sides) for p in again.prompts(image_id)] == [("left lung", "patient"), ("right lung", "image")]
    assert again.mask_record(image_id, "prediction").provenance.sides == "patient"
    with pytest.raises(ValueError, match="sides must be 'image' or 'patient'"):
        project.add_prompt(image_id, "left lung", author="alice", sides="radiological")


def test_human_label_records_how_much_of_the_prediction_was_changed(project: Project, model: str) -> None:
    """The edit effort of the annotation loop: |prediction XOR human label| / area, stored with the label."""
    ids = [project.add_image(np.full((20, 10), k, np.uint8), name=f"img{k}")[0] for k in range(3)]
    pred = np.zeros((20, 10), np.uint8)
    pred[2:8, 2:7] = 1  # 30 pixels
    for image_id in ids:
        project.write_prediction(image_id, pred, model=model, prompt="left lung")
    fixed = pred.copy()
    fixed[2:8, 2:4] = 0  # 12 pixels erased...
    fixed[15:17, 0:4] = 255  # ...and 8 painted, in another foreground value
    edited = project.mark_corrected(ids[0], fixed, author="alice")
    assert edited.provenance.changed == pytest.approx(20 / 200)
    assert edited.provenance.edited is True
    accepted = project.mark_corrected(ids[1], author="alice")
    assert accepted.provenance.changed == 0.0 and accepted.provenance.edited is False
    same = project.mark_corrected(ids[2], pred * 255, author="bob")  # drawn again, identical
    assert same.provenance.changed == 0.0
    unpredicted = project.add_image(np.full((20, 10), 9, np.uint8), name="new")[0]
    drawn = project.mark_corrected(unpredicted, pred, author="alice")
    assert drawn.provenance.changed is None and drawn.provenance.edited is None
    assert Project.open(project.root).mask_record(ids[0], "human").provenance.changed == pytest.approx(0.1)
