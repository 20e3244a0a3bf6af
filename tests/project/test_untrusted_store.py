"""A project received from someone else cannot reach outside itself: crafted manifests (names that are paths,
arrays that belong to others), symbolic links, and codecs that run code are refused before anything is written,
deleted or decoded, with one clear line from the command a user runs. Each test builds its crafted project in a
temporary folder with decoy files next to it; the commands run in a folder holding a ``napari_amvlm`` package
that must never be imported, with their memory limited."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.project import CorruptProjectError, Project

from .._untrusted import (
    Decoys,
    assert_one_clear_line,
    edit_manifest,
    run_amvlm,
    run_python,
    shadow_cwd,
    tree_digest,
)


def _project(path: Path, seed: int = 0) -> tuple[Project, dict[str, bytes]]:
    """Two images, the first with a human label; (project, human labels by id)."""
    rng = np.random.default_rng(seed)
    p = Project.create(path)
    ids = [p.add_image(rng.integers(0, 255, (40, 48), dtype=np.uint8), name=f"img{k}")[0] for k in range(2)]
    label = (rng.random((40, 48)) > 0.5).astype(np.uint8)
    p.mark_corrected(ids[0], label, author="alice")
    return p, {ids[0]: label.tobytes()}


def _labels(root: Path) -> dict[str, bytes]:
    p = Project.open(root, mode="r")
    return {i: np.asarray(p.read_mask(i, "human")[...]).tobytes() for i in p.image_ids("corrected")}


@pytest.fixture
def world(tmp_path):
    """A project, another project beside it, decoys outside both, and a working folder that shadows the package."""
    project, labels = _project(tmp_path / "shared.amvlm")
    other, other_labels = _project(tmp_path / "other.amvlm", seed=1)
    cwd, marker = shadow_cwd(tmp_path)
    return {"project": project, "labels": labels, "other": other, "other_labels": other_labels,
            "decoys": Decoys(tmp_path / "decoys"), "cwd": cwd, "marker": marker, "tmp": tmp_path}  # fmt: skip


def _nothing_reached_outside(w: dict) -> None:
    w["decoys"].assert_untouched()
    assert _labels(w["other"].root) == w["other_labels"]
    assert not w["marker"].exists(), "a module was imported from the working folder"


def _human_array(p: Project) -> str:
    return p.mask_record(p.image_ids("corrected")[0], "human").array


# ------------------------------------------------------------------ trash entries that name other folders
@pytest.mark.parametrize("entry", ["../../decoys", "ABSOLUTE", "OTHER", "."])
def test_trash_naming_anything_but_its_own_arrays_is_refused(world, entry):
    w, root = world, world["project"].root
    entry = {"ABSOLUTE": str(w["decoys"].root), "OTHER": f"../../other.amvlm/arrays/{_human_array(w['other'])}"
             }.get(entry, entry)  # fmt: skip
    edit_manifest(root, lambda m: m["trash"].update({entry: 0.0}))
    arrays = tree_digest(root / "arrays")
    image = w["tmp"] / "new.png"
    import imageio.v3 as iio

    iio.imwrite(image, np.full((30, 30), 7, np.uint8))
    mask = w["tmp"] / "masks" / "img1.png"
    mask.parent.mkdir()
    iio.imwrite(mask, np.zeros((40, 48), np.uint8))
    for cmd in (["project", "add", root, image], ["project", "import-masks", root, mask.parent, "--author", "bob"]):
        proc = run_amvlm(*cmd, cwd=w["cwd"])
        assert_one_clear_line(proc, "trash key", "must name an array of this project")
    assert tree_digest(root / "arrays") == arrays  # the labels it held are all there
    _nothing_reached_outside(w)
    edit_manifest(root, lambda m: m["trash"].pop(entry))
    assert _labels(root) == w["labels"]


def test_trash_naming_a_live_array_of_the_project_is_refused(world):
    root = world["project"].root
    human = _human_array(world["project"])
    edit_manifest(root, lambda m: m["trash"].update({human: 0.0}))
    with pytest.raises(CorruptProjectError, match=f"trash.*{human}.*would delete the array of images"):
        Project.open(root)
    assert (root / "arrays" / human).is_dir()


# ----------------------------------------------------------------------------------- symbolic links
def test_arrays_folder_linked_elsewhere_is_refused_before_any_write(world):
    """The reported case: the project's arrays (its human label included) moved into a folder outside it that also
    holds someone's files, and ``arrays`` linked there. An add would write its array there, and the orphan sweep
    after the first write would delete every file of that folder the manifest does not name."""
    import imageio.v3 as iio

    w, root = world, world["project"].root
    elsewhere = w["tmp"] / "elsewhere"
    os.rename(root / "arrays", elsewhere)
    (elsewhere / "thesis.txt").write_text("a colleague's thesis\n")
    (elsewhere / "scans").mkdir()
    (elsewhere / "scans" / "scan.bin").write_bytes(os.urandom(256))
    os.symlink(elsewhere, root / "arrays")
    digest = tree_digest(elsewhere)
    image = w["tmp"] / "new.png"
    iio.imwrite(image, np.full((30, 30), 7, np.uint8))
    proc = run_amvlm("project", "add", root, image, cwd=w["cwd"])  # its first write would sweep orphans
    assert_one_clear_line(proc, str(root / "arrays"), "not a link")
    with pytest.raises(CorruptProjectError, match="not a link"):
        Project.open(root, mode="r")
    with pytest.raises(CorruptProjectError, match="not a link"):
        Project.open(root, validate=False).compact()  # a write that sweeps every orphan at once
    assert tree_digest(elsewhere) == digest, "the folder the link names was changed"
    assert (elsewhere / "thesis.txt").is_file() and (elsewhere / "scans" / "scan.bin").is_file()
    os.remove(root / "arrays")
    os.rename(elsewhere / "thesis.txt", w["tmp"] / "thesis.txt")
    shutil.rmtree(elsewhere / "scans")
    os.rename(elsewhere, root / "arrays")
    assert _labels(root) == w["labels"] and len(Project.open(root, mode="r").image_ids()) == 2
    _nothing_reached_outside(w)


def test_lock_file_linked_elsewhere_is_refused_and_nothing_is_created(world):
    w, root = world, world["project"].root
    target = w["tmp"] / "created-by-the-lock"
    (root / ".lock").unlink()
    os.symlink(target, root / ".lock")
    proc = run_amvlm("project", "import-masks", root, w["decoys"].root, "--author", "bob", cwd=w["cwd"])
    assert_one_clear_line(proc, ".lock", "not a link")
    assert not target.exists()
    _nothing_reached_outside(w)


def test_array_linked_elsewhere_is_refused_and_links_are_never_followed(world):
    w, root = world, world["project"].root
    p = w["project"]
    image_array = root / "arrays" / p.image(p.image_ids()[1]).array
    os.rename(image_array, w["tmp"] / "moved-image")
    os.symlink(w["tmp"] / "moved-image", image_array)
    with pytest.raises(CorruptProjectError, match="not a folder"):
        Project.open(root, mode="r")
    os.remove(image_array)
    os.rename(w["tmp"] / "moved-image", image_array)
    stray = root / "arrays" / ("img-" + "0" * 32)
    os.symlink(w["decoys"].root, stray)  # a link no record names: the sweep removes the link, not its target
    Project.open(root).add_image(np.ones((8, 8), np.uint8), name="sweep")
    assert not os.path.lexists(stray)
    _nothing_reached_outside(w)


# ---------------------------------------------------------------------------------- names that are paths
@pytest.mark.parametrize("name", ["../outside/x", "ABSOLUTE", "-x", ".hidden", "a/b"])
def test_image_names_that_are_paths_are_refused_before_export(world, name):
    w, root = world, world["project"].root
    outside = w["tmp"] / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(b"a file someone keeps")
    name = str(outside / "x") if name == "ABSOLUTE" else name
    first = w["project"].image_ids()[0]
    edit_manifest(root, lambda m: m["images"][first].update(name=name))
    out = w["tmp"] / "export"
    proc = run_amvlm("project", "export", root, out, "--overwrite", cwd=w["cwd"])
    assert_one_clear_line(proc, f"images['{first}'].name", "file name")
    assert (outside / "x.png").read_bytes() == b"a file someone keeps" and not out.exists()
    _nothing_reached_outside(w)


@pytest.mark.parametrize("image_id", ["../../../../tmp/x", "--out=..", "a b", ""])
def test_image_ids_that_are_paths_or_options_are_refused(world, image_id):
    root = world["project"].root
    first = world["project"].image_ids()[0]

    def rename(m):
        m["images"][image_id] = {**m["images"].pop(first), "id": image_id}

    edit_manifest(root, rename)
    with pytest.raises(CorruptProjectError, match="file name"):
        Project.open(root, mode="r")


def test_ids_equal_their_keys(world):
    root = world["project"].root
    first = world["project"].image_ids()[0]
    edit_manifest(root, lambda m: m["images"][first].update(id="img1-0000000000"))
    with pytest.raises(CorruptProjectError, match=r"\.id must equal its key"):
        Project.open(root, mode="r")


def test_duplicate_names_are_refused_and_export_never_merges_two_masks(world, tmp_path):
    root = world["project"].root
    a, b = world["project"].image_ids()
    edit_manifest(root, lambda m: m["images"][b].update(name=m["images"][a]["name"]))
    with pytest.raises(CorruptProjectError, match="is also the name of"):
        Project.open(root, mode="r")
    edit_manifest(root, lambda m: m["images"][b].update(name=m["images"][a]["name"].upper()))  # IMG0 and img0
    p = Project.open(root)
    p.mark_corrected(b, np.ones((40, 48), np.uint8), author="alice")
    with pytest.raises(ValueError, match="two masks would be written to one file"):
        p.export_masks(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_export_checks_each_name_it_turns_into_a_file_name(world):
    """Defence in depth: a name that got past the manifest's schema (here changed in memory) is refused before
    anything is written."""
    w, root = world, world["project"].root
    outside = w["tmp"] / "x.png"
    outside.write_bytes(b"a file someone keeps")
    p = Project.open(root)
    first = p.image_ids()[0]
    p._m["images"][first]["name"] = "../x"
    out = w["tmp"] / "export"
    with pytest.raises(ValueError, match=r"the mask file name '\.\./x\.png' cannot be used as a file name"):
        p.export_masks(out, overwrite=True)
    assert outside.read_bytes() == b"a file someone keeps" and not out.exists()
    assert _labels(root) == w["labels"]
    _nothing_reached_outside(w)


# ------------------------------------------------------------------------------- codecs that run code
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("where", ["compressor", "filters", "object dtype"])
def test_pickle_codec_is_refused_before_any_array_is_opened(world, where):
    import json

    w, root = world, world["project"].root
    array = root / "arrays" / _human_array(w["project"])
    meta = json.loads((array / ".zarray").read_text())
    ran = w["tmp"] / "PAYLOAD-RAN"
    if where == "compressor":
        meta["compressor"] = {"id": "pickle", "protocol": 5}
    elif where == "filters":
        meta.update(filters=[{"id": "pickle"}], compressor=None)
    else:
        meta.update(dtype="|O", filters=[{"id": "pickle"}], compressor=None, fill_value=None)
    (array / ".zarray").write_text(json.dumps(meta))
    for chunk in array.glob("[0-9]*"):
        chunk.write_bytes(pickle.dumps(np.array([_Payload(ran)], dtype=object)))
    proc = run_amvlm("project", "export", root, w["tmp"] / "out", cwd=w["cwd"])
    assert_one_clear_line(proc, str(array), "cannot be opened")
    reader = run_python(f"from napari_amvlm._reader import read_project; read_project({str(root)!r})", w["cwd"])
    assert reader.returncode == 1 and "CorruptProjectError" in reader.stderr and "cannot be opened" in reader.stderr
    assert not ran.exists(), "the pickled payload ran"
    _nothing_reached_outside(w)


# --------------------------------------------------------------------------- what a project may allocate
def _zarray(array: Path, **changes) -> None:
    import json

    meta = json.loads((array / ".zarray").read_text())
    meta.update(changes)
    (array / ".zarray").write_text(json.dumps(meta))


def _second_image(w: dict) -> Path:
    p = w["project"]
    return p.root / "arrays" / p.image(p.image_ids()[1]).array


def _huge_shape(w: dict) -> Path:  # a 36 KB project whose image array declares 100000 x 100000 pixels
    array = _second_image(w)
    _zarray(array, shape=[100_000, 100_000], chunks=[512, 512])  # (the manifest still says 40 x 48)
    return array


def _zstd_zeros(n: int) -> bytes:
    """A zstd frame (what the store writes) that truly decodes into ``n`` zero bytes: 4 bytes a 128 KiB block."""
    blocks, left = [], n
    while left:
        size = min(left, 1 << 17)
        left -= size
        blocks.append((int(not left) | (1 << 1) | (size << 3)).to_bytes(3, "little") + b"\0")  # an RLE block
    return bytes([0x28, 0xB5, 0x2F, 0xFD, 0xE0]) + n.to_bytes(8, "little") + b"".join(blocks)


def _huge_chunk(w: dict) -> Path:  # one zstd chunk of 5 KB that inflates to 169 MB, in a consistent project
    array = _second_image(w)
    _zarray(array, shape=[13_000, 13_000], chunks=[13_000, 13_000])
    image = w["project"].image_ids()[1]
    edit_manifest(w["project"].root, lambda m: m["images"][image].update(shape=[13_000, 13_000]))
    (array / "0.0").write_bytes(_zstd_zeros(13_000 * 13_000))
    return array


def _lying_header(w: dict) -> Path:  # a human label's zstd chunk whose frame header declares 8 GiB
    array = w["project"].root / "arrays" / _human_array(w["project"])
    header = bytes([0x28, 0xB5, 0x2F, 0xFD, 0xE0]) + (8 << 30).to_bytes(8, "little")  # single segment, 8-byte size
    rle_block = (1 | (1 << 1) | ((1 << 17) << 3)).to_bytes(3, "little") + b"\0"  # last block: 128 KiB of zeros
    (array / "0.0").write_bytes(header + rle_block)
    return array


# (craft, words of the refusal: the array's own limits, never the manifest's schema)
SIZES = [
    (_huge_shape, "cannot be opened: its shape [100000, 100000] is larger than one image may be (178,956,970"),
    (_huge_chunk, "cannot be opened: its chunks [13000, 13000] are not chunks this store writes"),
    (_lying_header, "does not decode into one chunk of 1,920 bytes (its header says 8589934592)"),
]


@pytest.mark.parametrize(("craft", "words"), [pytest.param(*case, id=case[0].__name__[1:]) for case in SIZES])
def test_declared_sizes_are_bounded_before_allocating(world, craft, words):
    w, root = world, world["project"].root
    array = craft(w)
    code = (f"from napari_amvlm._reader import read_project\nfor layer in read_project({str(root)!r}):\n"
            "    import numpy as np; np.asarray(layer[0])")  # fmt: skip
    proc = run_python(code, w["cwd"])
    assert proc.returncode == 1 and "CorruptProjectError" in proc.stderr and "MemoryError" not in proc.stderr, \
        proc.stderr[-2000:]
    assert words in proc.stderr and str(array) in proc.stderr, proc.stderr[-2000:]
    proc = run_amvlm("project", "export", root, w["tmp"] / "out", cwd=w["cwd"])
    assert_one_clear_line(proc, str(array), words)
    _nothing_reached_outside(w)
