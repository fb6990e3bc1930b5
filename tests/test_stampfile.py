"""
The stamp file format: round trips, and every kind of damage is rejected.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstamps._stampfile import (
    FORMAT_VERSION,
    Pickling,
    Stamp,
    StampFormatError,
    pack,
    unpack,
)

from .strategies import same, sample, stamps


def as_bytes(stamp):
    return b"".join(bytes(part) for part in pack(stamp))


@given(stamps)
def test_encoding_round_trips(stamp):
    """A stamp decodes to what was encoded."""
    assert same(stamp, unpack(as_bytes(stamp)))


def test_every_truncation_is_rejected():
    """A stamp cut at any byte is not a stamp."""
    data = as_bytes(sample())
    for end in range(len(data)):
        with pytest.raises(StampFormatError):
            unpack(data[:end])


@given(st.data())
def test_flipped_bytes_are_rejected(data):
    """Any single changed byte is caught by the magic, version or checksum."""
    raw = bytearray(as_bytes(sample()))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))

    with pytest.raises(StampFormatError):
        unpack(bytes(raw))


def test_other_format_version_is_rejected():
    """A reader accepts only its own format version."""
    raw = bytearray(as_bytes(sample()))
    raw[7] = FORMAT_VERSION + 1

    with pytest.raises(StampFormatError, match="format version"):
        unpack(bytes(raw))


@pytest.mark.parametrize("garbage", [b"", b"\0" * 100, b"JOBSTMP", os.urandom(64)])
def test_garbage_is_rejected(garbage):
    """Empty and random files are not stamps."""
    with pytest.raises(StampFormatError):
        unpack(garbage)


def test_encode_pickles_a_pending_result():
    """encode() gives the same bytes for a result still to be pickled."""
    import pickle


    payload = b"x" * 100
    pending = Stamp(1, 5, (), (), Pickling(payload))
    done = Stamp(1, 5, (), (), pickle.dumps(payload, protocol=-1))
    assert as_bytes(done) == as_bytes(pending)


def test_payload_and_about_round_trip(tmp_path):
    """A payload and what describes the call come back, the payload checked apart."""
    import zlib

    from jobstamps._stampfile import PAYLOAD_OFFSET, Payload, read_head

    data = b"output" * 100
    stamp = Stamp(1, 5, (), (), b"result", {"command": ["a"]}, Payload(len(data), zlib.crc32(data), memoryview(data)))
    raw = as_bytes(stamp)
    back = unpack(raw)
    path = tmp_path / "stamp"
    path.write_bytes(raw)
    fd = os.open(path, os.O_RDONLY)
    try:
        head = read_head(fd)
    finally:
        os.close(fd)

    assert same(stamp, back)
    assert data == raw[PAYLOAD_OFFSET : PAYLOAD_OFFSET + len(data)]
    assert (len(data), zlib.crc32(data), data) == (back.payload.size, back.payload.crc, bytes(back.payload.data))
    assert {"command": ["a"]} == back.about == head.about
    assert (1, 5, b"", len(data)) == (head.created_ns, head.duration_ns, head.result, head.payload.size)


def test_function_stamps_have_no_payload():
    """A stamp without a payload reads back without one."""
    back = unpack(as_bytes(sample()))

    assert (None, None) == (back.payload, back.about)


def test_large_bytes_land_where_their_address_agrees():
    """A large bytes result is written at a file offset that agrees with its address, modulo 64, and reads back."""
    import io
    import pickle
    import sys

    from jobstamps._stampfile import write

    for extra in range(5):
        value = os.urandom(2 * 1024 * 1024 + extra)
        file = io.BytesIO()
        write(file, Stamp(10**18 + extra, 5, (("d" * extra, None),), (), Pickling(value), {"x": extra}))
        data = file.getvalue()
        offset = data.index(value[:64])

        assert 0 == (offset - id(value) - (sys.getsizeof(b"") - 1)) % 64
        assert value == pickle.loads(unpack(data).result)
