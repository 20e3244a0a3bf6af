"""The sha256 that names the source file (or DICOM series folder) of a project's planes: computed once per file
state, computed again when the file changes."""

from __future__ import annotations

import hashlib
import os

from napari_amvlm.project import files


def _count_reads(monkeypatch) -> list:
    calls = []
    real = files.sha256_file

    def counting(path, *a, **k):
        calls.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(files, "sha256_file", counting)
    return calls


def test_a_file_is_hashed_once_while_it_stays_the_same(tmp_path, monkeypatch):
    f = tmp_path / "scan.nii"
    f.write_bytes(b"first contents")
    calls = _count_reads(monkeypatch)
    first = files.source_digest(f)
    assert first == hashlib.sha256(b"first contents").hexdigest()
    assert files.source_digest(f) == first and len(calls) == 1

    f.write_bytes(b"second, longer contents")
    os.utime(f, ns=(1, 1))  # even a restored modification time does not hide a change of size
    second = files.source_digest(f)
    assert second == hashlib.sha256(b"second, longer contents").hexdigest() and len(calls) == 2


def test_a_series_folder_is_hashed_again_when_one_of_its_files_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "dicom_files", lambda folder: sorted(folder.iterdir()))
    for i in range(3):
        (tmp_path / f"s{i}.dcm").write_bytes(b"slice %d" % i)
    calls = _count_reads(monkeypatch)
    first = files.source_digest(tmp_path)
    assert len(calls) == 3
    assert files.source_digest(tmp_path) == first and len(calls) == 3

    (tmp_path / "s1.dcm").write_bytes(b"slice one, rewritten")
    assert files.source_digest(tmp_path) != first and len(calls) == 6
