"""Atomic writes and removal of old files."""

from __future__ import annotations

import os
import time

import pytest

from fibernode.services import storage


def aged(path, hours: float):
    at = time.time() - hours * 3600
    os.utime(path, (at, at), follow_symlinks=False)
    return path


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "deep" / "file.bin"
    storage.write_atomic(target, b"first")
    storage.write_atomic(target, "kedua")
    assert target.read_bytes() == b"kedua"
    with pytest.raises(RuntimeError), storage.atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"kedua"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temp left


def test_delete_old_files_keeps_young_kept_and_unmatched(tmp_path):
    (tmp_path / "a").mkdir()
    old = tmp_path / "a" / "old.jpg"
    old.write_bytes(b"x")
    aged(old, 30)
    young = tmp_path / "young.jpg"
    young.write_bytes(b"x")
    kept = tmp_path / "kept.jpg"
    kept.write_bytes(b"x")
    aged(kept, 30)
    other = tmp_path / "old.txt"
    other.write_bytes(b"x")
    aged(other, 30)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jpg"
    outside.write_bytes(b"x")
    link = tmp_path / "link.jpg"
    link.symlink_to(outside)
    aged(link, 30)
    cutoff = time.time() - 24 * 3600

    deleted = storage.delete_old_files(tmp_path, cutoff, keep=lambda p: p.name == "kept.jpg",
                                       pattern="*.jpg")

    assert sorted(p.name for p in deleted) == ["link.jpg", "old.jpg"]
    assert young.exists() and kept.exists() and other.exists() and outside.exists()
    assert storage.delete_old_files(tmp_path / "missing", cutoff) == []
    top_only = storage.delete_old_files(tmp_path, time.time() + 1, recursive=False)
    assert {p.name for p in top_only} == {"young.jpg", "kept.jpg", "old.txt"}
