from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstamps._store import (
    FORMAT_VERSION,
    DirectoryStore,
    Stamp,
    StampFormatError,
    decode,
    encode,
    function_folder,
)

fingerprints = st.one_of(
    st.none(),
    st.tuples(
        st.integers(0, 2**63), st.integers(0, 2**40), st.one_of(st.none(), st.text()), st.integers(0, 2**63)
    ),
)
stamps = st.builds(
    Stamp,
    st.integers(0, 2**63),
    st.lists(st.tuples(st.text(), fingerprints), max_size=5).map(tuple),
    st.lists(st.text(), max_size=3).map(tuple),
    st.binary(max_size=512),
)


def as_bytes(stamp):
    return b"".join(bytes(part) for part in encode(stamp))


def same(a, b):
    return (a.created_ns, a.dependencies, a.outputs, bytes(a.result)) == (
        b.created_ns,
        b.dependencies,
        b.outputs,
        bytes(b.result),
    )


@given(stamps)
def test_encoding_round_trips(stamp):
    """A stamp decodes to what was encoded."""
    assert same(stamp, decode(as_bytes(stamp)))


@given(stamps)
def test_store_round_trips(stamp):
    """A stamp saved to a store loads back equal."""
    with tempfile.TemporaryDirectory() as root:
        store = DirectoryStore(root)
        path = store.path("m:f", "ab" * 20)
        store.save(path, stamp)

        assert same(stamp, store.load(path))
        assert same(stamp, DirectoryStore(root).load(path))


def sample():
    return Stamp(1, (("a", (1, 2, "d", 3)),), ("out",), b"result")


def test_every_truncation_is_rejected():
    """A stamp cut at any byte is not a stamp."""
    data = as_bytes(sample())
    for end in range(len(data)):
        with pytest.raises(StampFormatError):
            decode(data[:end])


@given(st.data())
def test_flipped_bytes_are_rejected(data):
    """Any single changed byte is caught by the magic, version or checksum."""
    raw = bytearray(as_bytes(sample()))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))

    with pytest.raises(StampFormatError):
        decode(bytes(raw))


def test_other_format_version_is_rejected():
    """A reader accepts only its own format version."""
    raw = bytearray(as_bytes(sample()))
    raw[7] = FORMAT_VERSION + 1

    with pytest.raises(StampFormatError, match="format version"):
        decode(bytes(raw))


@pytest.mark.parametrize("garbage", [b"", b"\0" * 100, b"JOBSTMP", os.urandom(64)])
def test_garbage_is_rejected(garbage):
    """Empty and random files are not stamps."""
    with pytest.raises(StampFormatError):
        decode(garbage)


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
    store.save(path, Stamp(2, (), (), b"new"))

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

    other.save(path, Stamp(2, (), (), b"rewritten result"))

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

    from jobstamps._store import Pickling

    payload = os.urandom(3 * 1024 * 1024)
    store = DirectoryStore(str(tmp_path))
    path = store.path("m:f", "cd" * 20)
    store.save(path, Stamp(1, (("a", (1, 2, None, 3)),), (), Pickling(payload)))

    loaded = DirectoryStore(str(tmp_path)).load(path)
    assert payload == pickle.loads(loaded.result)
    with open(path, "rb") as file:
        assert payload == pickle.loads(decode(file.read()).result)
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


def test_encode_pickles_a_pending_result():
    """encode() gives the same bytes for a result still to be pickled."""
    import pickle

    from jobstamps._store import Pickling

    payload = b"x" * 100
    pending = Stamp(1, (), (), Pickling(payload))
    done = Stamp(1, (), (), pickle.dumps(payload, protocol=-1))
    assert as_bytes(done) == as_bytes(pending)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_matches_zlib(a, b):
    """Two CRC-32s combine into the CRC-32 of the joined bytes."""
    import zlib

    from jobstamps._store import crc32_combine

    assert zlib.crc32(a + b) == crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b))


def test_large_checksum_is_zlibs():
    """The checksum of a large buffer, taken in halves, is zlib's."""
    import zlib

    from jobstamps._store import _PARALLEL_CRC_BYTES, _crc32

    data = os.urandom(_PARALLEL_CRC_BYTES + 12345)
    assert zlib.crc32(data) == _crc32(memoryview(data))


def test_a_thread_holding_a_stamps_lock_gets_it_again_at_once(tmp_path):
    """The lock of a stamp its thread already holds is not waited for; other threads still wait."""
    import threading

    store = DirectoryStore(str(tmp_path))
    path = str(tmp_path / "stamp")
    events = []

    def other():
        with store.lock(path):
            events.append("other")

    def nested():
        with store.lock(path):
            events.append("outer")
            with store.lock(path):
                events.append("inner")
            waiter = threading.Thread(target=other)
            waiter.start()
            waiter.join(0.2)  # it must still be waiting: we hold the lock
            events.append("released")
        waiter.join(10)

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(30)

    assert not thread.is_alive()
    assert ["outer", "inner", "released", "other"] == events
