"""The transactional core: failed and torn commits, other writers, the trash, read-only projects, bad
stores, and lazy chunked reads of large images."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.project import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    CorruptProjectError,
    NotAProjectError,
    Project,
    ProjectError,
    ProjectVersionError,
    Status,
    is_project,
    store,
)

from ._helpers import array_dirs, folder_digest


def test_reading_from_another_thread_sees_only_committed_records(project: Project) -> None:
    import threading

    inside, release, seen = threading.Event(), threading.Event(), []

    def writer() -> None:
        with project.transaction():
            project.add_image(np.zeros((8, 8), np.uint8), name="a")
            inside.set()
            release.wait(10)
            project.add_image(np.ones((8, 8), np.uint8), name="b")

    t = threading.Thread(target=writer)
    t.start()
    assert inside.wait(10)
    with project.reading(timeout=0.01) as consistent:
        seen.append(consistent)  # the writer is half-way: no view of its records yet
    release.set()
    with project.reading() as consistent:  # waits for the commit
        seen.append((consistent, len(project)))
    t.join()
    assert seen == [False, (True, 2)]
    with project.transaction(), project.reading(timeout=0) as consistent:  # the writing thread itself reads
        assert consistent


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
    committed = json.loads((project.root / MANIFEST_NAME).read_text())

    def torn_write(path: Path, data: dict) -> None:  # the process "dies" with half a temporary manifest
        (path.parent / f".{path.name}.999.tmp").write_text(json.dumps(data)[:50])
        raise OSError("killed")

    monkeypatch.setattr(store, "write_manifest", torn_write)  # the commit point
    with pytest.raises(OSError):
        project.write_prediction(image_id, np.zeros((16, 16), np.uint8), model=model, prompt="two")
    monkeypatch.undo()
    assert project.mask_record(image_id, "prediction").provenance.prompt == "one"  # rolled back in memory too
    again = Project.open(project.root)
    assert json.loads((project.root / MANIFEST_NAME).read_text()) == committed
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


def _bump_version(root: Path) -> None:
    m = json.loads((root / MANIFEST_NAME).read_text())
    m["format_version"] = FORMAT_VERSION + 1
    (root / MANIFEST_NAME).write_text(json.dumps(m))


def _reshape_image_array(root: Path) -> None:
    p = Project.open(root)
    meta_file = root / "arrays" / p.image(p.image_ids()[0]).array / ".zarray"  # arrays use zarr format 2
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [5, 5]
    meta_file.write_text(json.dumps(meta))


def _reshape_mask_record(root: Path) -> None:
    m = json.loads((root / MANIFEST_NAME).read_text())
    entry = next(iter(m["images"].values()))
    entry["shape"] = [16, 99]  # image array says (16, 16); the masks too
    (root / MANIFEST_NAME).write_text(json.dumps(m))


def _delete_mask_array(root: Path) -> None:
    p = Project.open(root)
    rec = p.mask_record(p.image_ids()[0], "human")
    import shutil

    shutil.rmtree(root / "arrays" / rec.array)


def _remove_manifest(root: Path) -> None:
    (root / MANIFEST_NAME).unlink()


BAD_STORES = {
    "no manifest": (_remove_manifest, NotAProjectError),
    "other json": (lambda root: (root / MANIFEST_NAME).write_text('{"format": "x"}'), NotAProjectError),
    "torn json": (lambda root: (root / MANIFEST_NAME).write_text('{"format": "nap'), CorruptProjectError),
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
    assert folder_digest(tmp_path) == before and not is_project(tmp_path)


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
