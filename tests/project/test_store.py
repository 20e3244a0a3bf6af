"""The annotation project store: round trips, atomic commits under SIGKILL, the human-label guard, bad
stores, lazy reads of large images, and mask import/export with real QaTa data."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_amvlm import _project_store, storage
from napari_amvlm.storage import (
    CorruptProjectError,
    MaskKind,
    NotAProjectError,
    Project,
    ProjectError,
    ProjectVersionError,
    Provenance,
    Status,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_QATA = ROOT / "sample_data" / "qata"
SHARED_DATA = ROOT.parent / "shared" / "data"


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p.amvlm", name="test")


def make_weights(path: Path, value: float = 1.0) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.full((4, 4), value, np.float32)}, str(path))
    return path


@pytest.fixture
def model(project: Project, tmp_path: Path) -> str:
    return project.add_model(make_weights(tmp_path / "m1" / "model.safetensors")).sha256


def folder_digest(root: Path) -> str:
    """Hash of the paths under root and every file's bytes, mtime and mode (detects any change)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{p.is_dir()}".encode())
        if p.is_file():
            h.update(f"{st.st_mtime_ns}|{st.st_mode}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def array_dirs(project: Project) -> set[str]:
    return {p.name for p in (project.root / "arrays").iterdir()}


def binary(shape: tuple[int, int], seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.5).astype(np.uint8)


# ------------------------------------------------------------------------------------------- images
IMAGE_CASES = {
    "gray8": (np.arange(48 * 40, dtype=np.uint8).reshape(48, 40), False, 1),
    "rgb8": (np.random.default_rng(1).integers(0, 255, (30, 20, 3), dtype=np.uint8), True, 1),
    "gray16": (np.random.default_rng(2).integers(0, 65535, (33, 17), dtype=np.uint16), False, 1),
    "float32": (np.random.default_rng(3).random((16, 16)).astype(np.float32), False, 1),
    "stack16": (np.random.default_rng(4).integers(0, 4000, (3, 20, 24), dtype=np.uint16), False, 3),
    "rgb_stack": (np.random.default_rng(5).integers(0, 255, (2, 10, 12, 3), dtype=np.uint8), True, 2),
}


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_add_array_round_trip(project: Project, case: str) -> None:
    data, rgb, n = IMAGE_CASES[case]
    ids = project.add_image(data, name=case)
    assert len(ids) == n
    again = Project.open(project.root)
    planes = [data] if n == 1 else list(data)
    for i, (image_id, plane) in enumerate(zip(ids, planes)):
        rec = again.image(image_id)
        assert rec.rgb is rgb and rec.shape == plane.shape and rec.dtype == plane.dtype.name
        assert rec.slice == (None if n == 1 else i) and rec.n_slices == n
        assert rec.name == (case if n == 1 else f"{case}_z{i:04d}")
        expected_hash = hashlib.sha256(f"{plane.dtype.str}|{plane.shape}|".encode() + plane.tobytes())
        assert rec.sha256 == expected_hash.hexdigest()
        stored = again.read_image(image_id)
        assert stored.dtype == plane.dtype and np.array_equal(stored[...], plane)
        assert (rec.vmin, rec.vmax) == (float(plane.min()), float(plane.max()))
        assert again.status(image_id) is Status.UNLABELED


def test_add_files_and_folder(project: Project, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    gray = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    rgb = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    deep = np.random.default_rng(2).integers(0, 65535, (40, 50), dtype=np.uint16)
    stack = np.random.default_rng(3).integers(0, 65535, (4, 40, 50), dtype=np.uint16)
    skio.imsave(src / "a_gray.png", gray, check_contrast=False)
    skio.imsave(src / "b_rgb.png", rgb, check_contrast=False)
    tifffile.imwrite(src / "c_deep.tif", deep)
    tifffile.imwrite(src / "d_stack.tif", stack, photometric="minisblack")
    (src / "notes.txt").write_text("not an image")
    ids = project.add_images(src)
    assert len(ids) == 1 + 1 + 1 + 4
    recs = {project.image(i).name: project.image(i) for i in ids}
    assert set(recs) == {"a_gray", "b_rgb", "c_deep", *(f"d_stack_z{i:04d}" for i in range(4))}
    assert recs["b_rgb"].rgb and recs["c_deep"].dtype == "uint16"
    for name, arr in [("a_gray", gray), ("b_rgb", rgb), ("c_deep", deep), ("d_stack_z0002", stack[2])]:
        assert np.array_equal(project.read_image(recs[name].id)[...], arr)
    file = src / "d_stack.tif"
    assert recs["d_stack_z0002"].source == str(file.resolve())
    assert recs["d_stack_z0002"].file_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    # adding the same files again adds nothing and returns the same ids (stable, content-addressed)
    assert project.add_images([src]) == ids and len(project) == 7
    assert Project.open(project.root).image_ids() == ids


def test_unreadable_file_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="cannot read"):
        project.add_image(bad)
    with pytest.raises(FileNotFoundError):
        project.add_image(tmp_path / "missing.png")
    assert len(project) == 0


def test_same_name_different_pixels_gets_unique_name(project: Project) -> None:
    a = project.add_image(np.zeros((8, 8), np.uint8), name="x")[0]
    b = project.add_image(np.ones((8, 8), np.uint8), name="x")[0]
    assert a != b and project.image(a).name == "x" and project.image(b).name.startswith("x_")


# ------------------------------------------------------------------------------- masks and fields
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


def test_model_registration(project: Project, tmp_path: Path) -> None:
    weights = make_weights(tmp_path / "w" / "model.safetensors")
    rec = project.add_model(weights)
    assert rec.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest() and rec.size == weights.stat().st_size
    assert project.add_model(weights) == rec and len(project.models()) == 1  # idempotent
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a safetensors"):
        project.add_model(fake)
    with pytest.raises(FileNotFoundError):
        project.add_model(tmp_path / "none.safetensors")


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


# ----------------------------------------------------------------------------------- human guard
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


# ------------------------------------------------------------------------------------ transactions
def test_failed_transaction_commits_nothing(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    before, arrays = folder_digest(project.root), array_dirs(project)
    with pytest.raises(RuntimeError), project.transaction():
        project.add_image(np.ones((16, 16), np.uint8))
        project.write_prediction(image_id, np.ones((16, 16), np.uint8), model=model)
        raise RuntimeError("boom")
    assert len(project) == 1 and project.status(image_id) is Status.UNLABELED
    assert array_dirs(project) == arrays
    assert folder_digest(project.root) == before


def test_crash_while_writing_manifest_keeps_last_commit(project: Project, model: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    project.write_prediction(image_id, np.ones((16, 16), np.uint8), model=model, prompt="one")
    committed = json.loads((project.root / storage.MANIFEST_NAME).read_text())

    def torn_write(path: Path, data: dict) -> None:  # the process "dies" with half a temporary manifest
        (path.parent / f".{path.name}.999.tmp").write_text(json.dumps(data)[:50])
        raise OSError("killed")

    monkeypatch.setattr(_project_store, "write_json_atomic", torn_write)  # the commit point
    with pytest.raises(OSError):
        project.write_prediction(image_id, np.zeros((16, 16), np.uint8), model=model, prompt="two")
    monkeypatch.undo()
    assert project.mask_record(image_id, "prediction").provenance.prompt == "one"  # rolled back in memory too
    again = Project.open(project.root)
    assert json.loads((project.root / storage.MANIFEST_NAME).read_text()) == committed
    assert again.mask_record(image_id, "prediction").provenance.prompt == "one"
    assert np.array_equal(again.read_mask(image_id, "prediction")[...], np.ones((16, 16)))
    assert array_dirs(again) == again._referenced_arrays()  # the failed commit removed its arrays
    assert list(project.root.glob(".*.tmp"))  # the half-written manifest is ignored...
    again.add_prompt(image_id, "next", author="alice")  # ...and removed by the next writer
    assert not list(project.root.glob(".*.tmp"))
    assert array_dirs(again) == again._referenced_arrays()


def test_other_writers_commits_are_not_lost(project: Project, model: str) -> None:
    other = Project.open(project.root)  # e.g. the CLI while the plugin has the project open
    a = project.add_image(np.zeros((8, 8), np.uint8), name="a")[0]
    b = other.add_image(np.ones((8, 8), np.uint8), name="b")[0]  # other's view was stale: it refreshes
    project.write_prediction(a, np.ones((8, 8), np.uint8), model=model)
    final = Project.open(project.root)
    assert final.image_ids() == [a, b] and final.status(a) is Status.PREDICTED


def test_superseded_predictions_are_trashed_then_deleted(project: Project, model: str) -> None:
    image_id = project.add_image(np.zeros((8, 8), np.uint8))[0]
    first = project.write_prediction(image_id, np.ones((8, 8), np.uint8), model=model)
    project.write_prediction(image_id, np.zeros((8, 8), np.uint8), model=model)
    assert first.array in array_dirs(project)  # kept for the grace period (lazy views stay valid)
    project.compact()
    assert first.array not in array_dirs(project) and array_dirs(project) == project._referenced_arrays()
    project.trash_grace_s = 0.0
    second = project.mask_record(image_id, "prediction")
    project.write_prediction(image_id, np.ones((8, 8), np.uint8), model=model)
    project.add_prompt(image_id, "x", author="alice")
    assert second.array not in array_dirs(project)


def test_read_only_project_refuses_writes(project: Project) -> None:
    project.add_image(np.zeros((8, 8), np.uint8))
    ro = Project.open(project.root, mode="r")
    with pytest.raises(ProjectError, match="read-only"):
        ro.add_image(np.ones((8, 8), np.uint8))


# ------------------------------------------------------------------------------------- kill loop
WRITER = r"""
import sys
import numpy as np
from napari_amvlm.storage import Project

def mask_for(step):
    m = np.zeros((64, 64), np.uint8)
    m[: step % 64 + 1, : (7 * step) % 64 + 1] = 1
    return m

project = Project.open(sys.argv[1])
model = project.models()[0].sha256
ids = project.image_ids()[:4]
step = sum(len(project.prompts(i)) for i in ids)  # one prompt per committed step
print("ready", step, flush=True)
while True:
    step += 1
    image_id = ids[step % 4]
    with project.transaction():  # one commit per step
        project.write_prediction(image_id, mask_for(step), model=model, prompt=f"step {step}")
        if step % 3 == 0:
            project.mark_corrected(image_id, mask_for(step) * 255, author="writer", note=f"step {step}")
        if step % 5 == 0:
            project.add_image(np.full((300, 300), step, np.uint16), name=f"s{step}")
    print(step, flush=True)
"""


def _mask_for(step: int) -> np.ndarray:
    m = np.zeros((64, 64), np.uint8)
    m[: step % 64 + 1, : (7 * step) % 64 + 1] = 1
    return m


def _check_committed_state(root: Path, steps: int) -> None:
    """The store holds exactly steps 1..``steps``, each whole, and every array it names is readable."""
    p = Project.open(root)
    ids = p.image_ids()[:4]
    assert len(p) == 4 + steps // 5
    for k, image_id in enumerate(ids):
        mine = [s for s in range(1, steps + 1) if s % 4 == k]
        assert [x.text for x in p.prompts(image_id)] == [f"step {s}" for s in mine]
        if mine:
            assert p.mask_record(image_id, "prediction").provenance.prompt == f"step {mine[-1]}"
            assert np.array_equal(p.read_mask(image_id, "prediction")[...], _mask_for(mine[-1]))
        human = [s for s in mine if s % 3 == 0]
        assert len(p.human_history(image_id)) == max(len(human) - 1, 0)
        if human:
            assert np.array_equal(p.read_mask(image_id, "human")[...], _mask_for(human[-1]))
            assert p.mask_record(image_id, "human").foreground == 255
    for s in range(5, steps + 1, 5):
        image_id = p.find_by_name(f"s{s}")
        assert image_id is not None and int(p.read_image(image_id)[299, 299]) == s


def test_sigkill_at_any_moment_leaves_last_commit(project: Project, model: str, tmp_path: Path) -> None:
    for i in range(4):
        project.add_image(np.full((64, 64), i, np.uint8), name=f"base{i}")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(0)
    acked, torn_kills, kills = 0, 0, 24
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE,
                                text=True, cwd=ROOT)  # fmt: skip
        ready = proc.stdout.readline().split()
        assert ready and ready[0] == "ready", "writer failed to start"
        assert int(ready[1]) == acked  # the writer resumes from the last commit
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        lines = [int(x) for x in out.split()]
        acked = lines[-1] if lines else acked  # commits the writer reported before it died
        torn_kills += bool(array_dirs(project) - Project.open(project.root)._referenced_arrays())
        steps = Project.open(project.root)
        committed = sum(len(steps.prompts(i)) for i in steps.image_ids()[:4])
        # the last commit is there; at most one more (committed, but killed before it could report)
        assert committed in (acked, acked + 1), (committed, acked)
        acked = committed
        _check_committed_state(project.root, committed)
    assert acked > kills, "the writer hardly committed anything"
    assert torn_kills > 0, "no kill landed in the middle of a write"
    final = Project.open(project.root)
    final.add_prompt(final.image_ids()[0], "after the crashes", author="alice")
    assert array_dirs(final) == final._referenced_arrays()  # half-written arrays were cleaned up


# ------------------------------------------------------------------------------------- bad stores
def _bump_version(root: Path) -> None:
    m = json.loads((root / storage.MANIFEST_NAME).read_text())
    m["format_version"] = storage.FORMAT_VERSION + 1
    (root / storage.MANIFEST_NAME).write_text(json.dumps(m))


def _reshape_image_array(root: Path) -> None:
    p = Project.open(root)
    meta_file = root / "arrays" / p.image(p.image_ids()[0]).array / ".zarray"  # arrays use zarr format 2
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [5, 5]
    meta_file.write_text(json.dumps(meta))


def _reshape_mask_record(root: Path) -> None:
    m = json.loads((root / storage.MANIFEST_NAME).read_text())
    entry = next(iter(m["images"].values()))
    entry["shape"] = [16, 99]  # image array says (16, 16); the masks too
    (root / storage.MANIFEST_NAME).write_text(json.dumps(m))


def _delete_mask_array(root: Path) -> None:
    p = Project.open(root)
    rec = p.mask_record(p.image_ids()[0], "human")
    import shutil

    shutil.rmtree(root / "arrays" / rec.array)


def _remove_manifest(root: Path) -> None:
    (root / storage.MANIFEST_NAME).unlink()


BAD_STORES = {
    "no manifest": (_remove_manifest, NotAProjectError),
    "other json": (lambda root: (root / storage.MANIFEST_NAME).write_text('{"format": "x"}'), NotAProjectError),
    "torn json": (lambda root: (root / storage.MANIFEST_NAME).write_text('{"format": "nap'), CorruptProjectError),
    "newer version": (_bump_version, ProjectVersionError),
    "image shape": (_reshape_image_array, CorruptProjectError),
    "record shape": (_reshape_mask_record, CorruptProjectError),
    "missing array": (_delete_mask_array, CorruptProjectError),
}


@pytest.mark.parametrize("case", BAD_STORES)
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_bad_stores_give_clear_errors_and_stay_untouched(project: Project, case: str, mode: str) -> None:
    image_id = project.add_image(np.zeros((16, 16), np.uint8))[0]
    project.mark_corrected(image_id, np.ones((16, 16), np.uint8), author="alice")
    damage, error = BAD_STORES[case]
    damage(project.root)
    before = folder_digest(project.root)
    with pytest.raises(error) as info:
        Project.open(project.root, mode=mode)
    assert isinstance(info.value, ValueError) and str(project.root) in str(info.value)
    assert folder_digest(project.root) == before


def test_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    before = folder_digest(tmp_path)
    with pytest.raises(NotAProjectError, match="not an annotation project"):
        Project.open(tmp_path)
    with pytest.raises(NotAProjectError):
        Project.open(tmp_path / "a.txt")
    with pytest.raises(FileNotFoundError):
        Project.open(tmp_path / "missing")
    with pytest.raises(ProjectError, match="not an empty folder"):
        Project.create(tmp_path)
    assert folder_digest(tmp_path) == before and not storage.is_project(tmp_path)


# ------------------------------------------------------------------------------------- large images
def test_large_image_is_chunked_and_read_lazily(project: Project) -> None:
    big = np.random.default_rng(0).integers(0, 65535, (4096, 4096), dtype=np.uint16)  # 32 MiB
    image_id = project.add_image(big, name="big")[0]
    project.mark_corrected(image_id, (big > 30000).astype(np.uint8), author="alice")
    chunk_files = [f for f in (project.root / "arrays" / project.image(image_id).array).iterdir()
                   if not f.name.startswith(".")]  # fmt: skip
    assert len(chunk_files) == 64  # 512 x 512 chunks
    del big
    tracemalloc.start()
    p = Project.open(project.root, mode="r")
    image, mask = p.read_image(image_id), p.read_mask(image_id, "human")
    tile = np.asarray(image[1000:1256, 2000:2256])
    mask_tile = np.asarray(mask[1000:1256, 2000:2256])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not isinstance(image, np.ndarray) and image.shape == (4096, 4096)
    assert tile.shape == (256, 256) and mask_tile.shape == (256, 256)
    assert peak < 8 * 2**20, f"reading one tile used {peak / 2**20:.1f} MiB (the image is 32 MiB)"
    expected = np.random.default_rng(0).integers(0, 65535, (4096, 4096), dtype=np.uint16)
    assert np.array_equal(tile, expected[1000:1256, 2000:2256])


# ---------------------------------------------------------------------------------- import/export
def test_sample_qata_import_export_identical(project: Project, tmp_path: Path) -> None:
    project.add_images(SAMPLE_QATA / "images")
    report = project.import_masks(SAMPLE_QATA / "masks", author="alice")
    assert len(report.imported) == 10 and not report.unmatched
    out = project.export_masks(tmp_path / "out", prefix="mask_")
    assert sorted(p.name for p in out) == sorted(p.name for p in (SAMPLE_QATA / "masks").iterdir())
    for path in out:
        original = skio.imread(SAMPLE_QATA / "masks" / path.name)
        exported = skio.imread(path)
        assert exported.dtype == original.dtype and np.array_equal(exported, original)
    with pytest.raises(ValueError, match="exists"):
        project.export_masks(tmp_path / "out", prefix="mask_")
    assert len(project.export_masks(tmp_path / "out", prefix="mask_", overwrite=True)) == 10


def test_export_predictions_png_and_tif(project: Project, model: str, tmp_path: Path) -> None:
    ids = project.add_images([np.zeros((10, 12), np.uint8), np.ones((10, 12), np.uint8)])
    pred = binary((10, 12), 0)
    project.write_prediction(ids[0], pred, model=model)
    [png] = project.export_masks(tmp_path / "png", kind="prediction")
    assert png.name == f"{project.image(ids[0]).name}.png"
    assert np.array_equal(skio.imread(png), pred * 255)  # binary predictions default to 0/255
    [tif] = project.export_masks(tmp_path / "tif", kind="prediction", fmt="tiff", foreground=1)
    assert tif.suffix == ".tif" and np.array_equal(tifffile.imread(tif), pred)
    assert project.export_masks(tmp_path / "none", kind="human") == []
    with pytest.raises(ValueError, match="format"):
        project.export_masks(tmp_path / "x", kind="prediction", fmt="jpg")


def test_stack_masks_import_and_export_per_slice(project: Project, tmp_path: Path) -> None:
    stack = np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", stack, photometric="minisblack")
    ids = project.add_image(tmp_path / "vol.tif")
    labels = np.random.default_rng(1).integers(0, 4, (3, 16, 16), dtype=np.uint16)
    masks = tmp_path / "masks"
    masks.mkdir()
    tifffile.imwrite(masks / "vol_mask.tif", labels, photometric="minisblack")
    report = project.import_masks(masks, author="alice")
    assert list(report.imported) == ids
    out = project.export_masks(tmp_path / "out", fmt="tif")
    assert [p.name for p in out] == [f"vol_z{i:04d}.tif" for i in range(3)]
    assert all(np.array_equal(tifffile.imread(p), labels[i]) for i, p in enumerate(out))


def test_import_is_all_or_nothing(project: Project, tmp_path: Path) -> None:
    a = project.add_image(np.full((8, 8), 5, np.uint8), name="a")[0]
    b = project.add_image(np.full((8, 8), 6, np.uint8), name="b")[0]
    masks = tmp_path / "m"
    masks.mkdir()
    skio.imsave(masks / "mask_a.png", np.full((8, 8), 255, np.uint8), check_contrast=False)
    skio.imsave(masks / "mask_b.png", np.zeros((9, 9), np.uint8), check_contrast=False)  # wrong shape
    skio.imsave(masks / "mask_zzz.png", np.zeros((8, 8), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="mask_b.png"):
        project.import_masks(masks, author="alice")
    assert project.status(a) is Status.UNLABELED and project.status(b) is Status.UNLABELED
    (masks / "mask_b.png").unlink()
    report = project.import_masks(masks, author="alice")
    assert list(report.imported) == [a] and [p.name for p in report.unmatched] == ["mask_zzz.png"]


QATA_TRAIN = SHARED_DATA / "qata_cov19" / "train"


@pytest.mark.skipif(not QATA_TRAIN.is_dir(), reason=f"real QaTa data not found at {QATA_TRAIN}")
def test_real_qata_image_and_mask_round_trip(project: Project, tmp_path: Path) -> None:
    import csv

    with open(QATA_TRAIN / "text.csv", newline="") as f:  # the first image whose mask shows infection
        row = next(r for r in csv.DictReader(f) if skio.imread(QATA_TRAIN / r["mask"]).any())
    image_file, mask_file = QATA_TRAIN / row["image"], QATA_TRAIN / row["mask"]
    [image_id] = project.add_image(image_file)
    project.add_prompt(image_id, row["text"], author="dataset")
    report = project.import_masks([mask_file], author="clinician")
    assert list(report.imported) == [image_id]
    again = Project.open(project.root)
    assert np.array_equal(again.read_image(image_id)[...], skio.imread(image_file))
    assert again.image(image_id).file_sha256 == hashlib.sha256(image_file.read_bytes()).hexdigest()
    [out] = again.export_masks(tmp_path / "out", prefix="mask_")
    assert out.name == mask_file.name
    original, exported = skio.imread(mask_file), skio.imread(out)
    assert exported.dtype == original.dtype == np.uint8 and exported.shape == original.shape
    assert np.array_equal(exported, original) and set(np.unique(original)) <= {0, 255}
    from PIL import Image

    assert Image.open(out).mode == Image.open(mask_file).mode == "L"


DSB = SHARED_DATA / "dsb2018"


@pytest.mark.skipif(not DSB.is_dir(), reason=f"real DSB2018 data not found at {DSB}")
def test_real_16bit_image_with_instance_labels(project: Project, tmp_path: Path) -> None:
    [image_id] = project.add_image(DSB / "img2d.tif")
    original = tifffile.imread(DSB / "mask2d.tif")
    project.mark_corrected(image_id, original, author="annotator")
    rec = Project.open(project.root).image(image_id)
    assert rec.dtype == "uint16" and (rec.vmin, rec.vmax) == (0.0, float(tifffile.imread(DSB / "img2d.tif").max()))
    [out] = project.export_masks(tmp_path / "out", fmt="tif")
    assert out.name == "img2d.tif" and len(np.unique(original)) > 100
    assert np.array_equal(tifffile.imread(out), original) and tifffile.imread(out).dtype == np.uint16
