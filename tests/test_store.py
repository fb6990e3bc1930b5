"""
The directory store: layout, atomic saves, memory of recent stamps, privacy.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given

from jobstamps._stampfile import Pickling, Stamp, StampFormatError, unpack
from jobstamps._store import DirectoryStore, function_folder

from .strategies import same, sample, stamps


@given(stamps)
def test_store_round_trips(stamp):
    """A stamp saved to a store loads back equal."""
    with tempfile.TemporaryDirectory() as root:
        store = DirectoryStore(root)
        path = store.path("m:f", "ab" * 20)
        store.save(path, stamp)

        assert same(stamp, store.load(path))
        assert same(stamp, DirectoryStore(root).load(path))


def test_layout_fans_out_by_digest(tmp_path):
    """Stamps live at <root>/<function>/ab/cd/<digest>."""
    store = DirectoryStore(str(tmp_path))
    digest = "abcdef" + "0" * 34
    path = store.path("pkg.mod:lint", digest)

    assert os.path.join(str(tmp_path), function_folder("pkg.mod:lint"), "ab", "cd", digest) == path
    assert function_folder("pkg.mod:lint").startswith("pkg.mod_lint-")
    assert function_folder("a:b") != function_folder("a_b")


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    """Saving replaces the stamp in one rename and leaves nothing else."""
    store = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "ab" * 20)
    store.save(path, sample())
    store.save(path, Stamp(2, 5, (), (), b"new"))

    assert [os.path.basename(path)] == os.listdir(os.path.dirname(path))
    assert bytes(store.load(path).result) == b"new"


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A write that fails halfway leaves neither a stamp nor a temporary file."""
    store = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "ab" * 20)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        store.save(path, sample())

    assert [] == os.listdir(os.path.dirname(path))


def test_remembered_stamp_is_dropped_when_the_file_changes(tmp_path):
    """A stamp rewritten by another process is read again, not served from memory."""
    store = DirectoryStore(str(tmp_path))
    other = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "ab" * 20)
    store.save(path, sample())
    assert bytes(store.load(path).result) == b"result"

    other.save(path, Stamp(2, 5, (), (), b"rewritten result"))

    assert bytes(store.load(path).result) == b"rewritten result"


def test_missing_stamp_is_none(tmp_path):
    """No file, no stamp."""
    store = DirectoryStore(str(tmp_path))

    assert store.load(store.path("m:f", "ab" * 20)) is None


def test_clear_removes_one_function(tmp_path):
    """Clearing a function removes its stamps and no other function's."""
    store = DirectoryStore(str(tmp_path))
    mine, theirs = store.path("m:f", "ab" * 20), store.path("m:g", "ab" * 20)
    store.save(mine, sample())
    store.save(theirs, sample())

    store.clear("m:f")

    assert store.load(mine) is None
    assert store.load(theirs) is not None


def test_folders_are_private(tmp_path):
    """Stamp folders are created 0700 and stamps 0600."""
    previous = os.umask(0o022)
    try:
        store = DirectoryStore(str(tmp_path / "root"))
        path = store.path("m:f", "ab" * 20)
        store.save(path, sample())
    finally:
        os.umask(previous)

    assert os.stat(tmp_path / "root").st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_large_result_round_trips_and_is_checked(tmp_path):
    """A result of several MiB, pickled into the file and mapped back, is checked too."""
    import pickle


    payload = os.urandom(3 * 1024 * 1024)
    store = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "cd" * 20)
    store.save(path, Stamp(1, 5, (("a", (1, 2, None, 3)),), (), Pickling(payload)))

    loaded = DirectoryStore(str(tmp_path)).load(path)
    assert payload == pickle.loads(loaded.result)
    with open(path, "rb") as file:
        assert payload == pickle.loads(unpack(file.read()).result)
    del loaded

    with open(path, "rb") as file:
        raw = bytearray(file.read())
    raw[len(raw) // 2] ^= 1
    with open(path, "wb") as file:
        file.write(raw)
    with pytest.raises(StampFormatError, match="checksum"):
        DirectoryStore(str(tmp_path)).load(path)
    with open(path, "wb") as file:
        file.write(raw[: len(raw) - 1])
    with pytest.raises(StampFormatError, match="checksum"):
        DirectoryStore(str(tmp_path)).load(path)


def test_clear_removes_only_files_it_names(tmp_path):
    """Clearing a function removes its stamps, lock and temporary files, and nothing else."""
    store = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "ab" * 20)
    store.save(path, sample())
    folder = os.path.dirname(path)
    for name in ("ab" * 20 + ".lock", ".x.123-0123abcd.tmp"):
        with open(os.path.join(folder, name), "w"):
            pass
    for name in ("notes.txt", "ab" * 20 + ".bak", "cd" * 20):
        with open(os.path.join(folder, name), "w"):
            pass

    store.clear("m:f")

    assert ["ab" * 20 + ".bak", "cd" * 20, "notes.txt"] == sorted(os.listdir(folder))


def test_temporary_names():
    """Only names of the temporary-file scheme count as temporary files."""
    from jobstamps._fs import is_temporary, temporary_name

    assert is_temporary(os.path.basename(temporary_name("/a/stamp")))
    for name in ("notes.tmp", ".notes.tmp", ".a.12-xyzxyzxy.tmp", ".a.x-0123abcd.tmp", ".a.1-0123abc.tmp"):
        assert not is_temporary(name), name
