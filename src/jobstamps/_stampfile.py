"""
The stamp record and its file format: :class:`Stamp`, :func:`pack`,
:func:`unpack`, :func:`write`, the checksum, and how a result is pickled
into a stamp and out of it.

A stamp file is::

    MAGIC (7 bytes) | format version (1) | payload length (8) | payload |
    meta length (4) | meta (marshal) | result (pickle) | CRC-32 (4)

The CRC-32 covers the payload length and everything after the payload up to
itself; at the end, it can be computed while a large result is pickled
straight into the file. Bytes that are truncated, of another format version
or fail their checksum are no stamp at all (:class:`StampFormatError`).

The payload (:mod:`._payload`) is raw bytes kept beside the pickled result,
never unpickled and never read to load a stamp (a command's output:
:mod:`._streams` gives it a meaning). It comes first so that it can be
written straight into the stamp's own temporary file while it is produced
(:class:`Spool`), before anything else of the stamp is known; its own CRC-32
is in the meta, and its reader checks it before using a byte of it.
Function stamps have an empty payload.
The meta also holds *about*, plain data describing the call for listings,
which :func:`read_head` reads without the rest.

This module knows bytes only: not where stamps live (:mod:`._store`), nor
whether one is fresh (:mod:`._freshness`).
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib

try:
    # The C implementation alone: the pickle module around it costs 1.5 to
    # 2.2 ms more to import (fresh processes: 0.7 against 2.2 ms, medians 1.0
    # against 3.2 ms), about 5% of a cached `jobstamp` run in scenario 7 of
    # benchmarks/run.py, whose target is 1.5x an empty console script.
    import _pickle as pickle
except ImportError:  # pragma: no cover - other interpreters
    import pickle  # type: ignore[no-redef]

from ._payload import PAYLOAD_OFFSET as PAYLOAD_OFFSET
from ._payload import Payload as Payload
from ._payload import PayloadChangedError as PayloadChangedError
from ._payload import Spool as Spool
from ._payload import copy, read

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from typing import Any, BinaryIO

    from ._protocol import Fingerprint

    Dependencies = tuple[tuple[str, Fingerprint | None], ...]
    # (path, SHA-256 of the contents kept for restoring it or None, mode)
    Outputs = tuple[tuple[str, str | None, int], ...]

MAGIC = b"JOBSTMP"
# 2: the checksum also covers the meta length.
# 3: the checksum moved to the end of the file.
# 4: stamps record how long their run took (duration_ns), what describes
#    the call (about), and may hold a payload.
FORMAT_VERSION = 4
_HEADER = MAGIC + bytes([FORMAT_VERSION])
# The header: magic, version and the payload's length.
_HEADER_SIZE = PAYLOAD_OFFSET
_TRAILER_SIZE = 4
_MARSHAL_VERSION = 4
# The mode recorded for a listed output that the run did not write.
NOT_WRITTEN = -1

# Part of every key: a stamp is only ever read by the same stamp format and
# the same Python (pickles of one minor version may not load in another).
KEY_CONTEXT = b"stamp-format=%d;python=%d.%d" % (FORMAT_VERSION, *sys.version_info[:2])


class Stamp:
    """
    What one run of a job saw and returned.

    A *result* given as an :class:`Attached` brings its *about* and
    *payload* along.
    """

    __slots__ = (
        "about",
        "created_ns",
        "dependencies",
        "duration_ns",
        "outputs",
        "payload",
        "result",
    )

    def __init__(
        self,
        created_ns: int,
        duration_ns: int,
        dependencies: Dependencies,
        outputs: Outputs,
        result: bytes | memoryview | Pickling | Attached,
        about: object = None,
        payload: Payload | None = None,
    ) -> None:
        if type(result) is Attached:
            about, payload, result = result.about, result.payload, result.value  # type: ignore[assignment]
        # When the run started (wall clock), and how long the function took.
        self.created_ns = created_ns
        self.duration_ns = duration_ns
        self.dependencies = dependencies
        self.outputs = outputs
        # The pickled return value; callers unpickle it on every hit so that
        # no two callers share one mutable object. (A Pickling only in a
        # stamp on its way to write(); stamps read back always hold bytes.)
        self.result: bytes | memoryview = result  # type: ignore[assignment]
        # Plain data (marshal's types) describing the call, for listings.
        self.about = about
        self.payload = payload


class Attached:
    """
    A result with what its stamp keeps beside the pickled *value*: *about*
    (plain data describing the call, for listings) and a *payload* (raw
    bytes, a :class:`Spool` while a run writes them).

    A function that returns one has *value* pickled and the rest stored
    beside it; :func:`unpickled` gives one back for a stamp with a payload.
    """

    __slots__ = ("about", "payload", "value")

    def __init__(
        self, value: object, about: object = None, payload: Payload | None = None
    ) -> None:
        self.value = value
        self.about = about
        self.payload = payload


class Pickling:
    """
    A result still to be pickled, which :func:`write` pickles straight into
    the stamp file (no copy of a large result in memory).

    Only for values whose pickling can't fail, as ``bytes``.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def pickled(result: object) -> bytes | Pickling:
    """
    *result* pickled for a stamp, or, when it is large bytes (whose pickling
    can't fail), left for :func:`write` to pickle straight into the stamp
    file: stamping the 200 MB result of scenario 6 of benchmarks/run.py so
    takes 136 ms, against 384 ms pickled first (its target is 0.5x a plain
    write).

    Raises:
        Exception: whatever pickling *result* raises.
    """
    if (type(result) is bytes or type(result) is bytearray) and len(result) > (1 << 20):
        return Pickling(result)
    if type(result) is Attached:
        return Attached(pickled(result.value), result.about, result.payload)  # type: ignore[return-value]
    return pickle.dumps(result, protocol=-1)  # -1: the highest protocol


def unpickled(stamp: Stamp) -> object:
    """
    The result *stamp* holds, a new object on every call (no two callers
    share one mutable result); an :class:`Attached` when it has a payload.

    Raises:
        Exception: whatever unpickling raises (say, its class was renamed).
    """
    value = pickle.loads(stamp.result)
    if stamp.payload is None:
        return value
    return Attached(value, stamp.about, stamp.payload)


class StampFormatError(ValueError):
    """
    The bytes of a stamp file are not a stamp this version can read.
    """


def pack(stamp: Stamp) -> tuple[bytes | memoryview, ...]:
    """
    The sections of *stamp*'s file, in order: joined, they are the file.

    For stamps small enough to hold in memory; :func:`write` streams.
    """
    result: object = stamp.result
    if isinstance(result, Pickling):  # whole, here; write() needs no copy
        result = pickle.dumps(result.value, protocol=-1)
    assert isinstance(result, bytes | memoryview)
    payload = stamp.payload
    size = 0 if payload is None else payload.size
    data: bytes | memoryview = b""
    if payload is not None:
        data = payload.data if payload.data is not None else read(payload)
    prefix = _HEADER + size.to_bytes(8, "big")
    meta = _meta(stamp)
    checksum = zlib.crc32(result, zlib.crc32(meta, zlib.crc32(prefix[len(_HEADER) :])))
    return (prefix, data, meta, result, checksum.to_bytes(4, "big"))


def write(file: BinaryIO, stamp: Stamp) -> None:
    """
    Write *stamp*'s file to *file*, pickling a :class:`Pickling` result
    straight into it; a :class:`Spool` payload already in *file* is left
    where it is, and any other payload is copied.

    Raises:
        OSError: the payload could not be spooled (:attr:`Spool.error`), or
            changed while it was copied (:class:`PayloadChangedError`).
    """
    payload = stamp.payload
    size = 0 if payload is None else payload.size
    prefix = _HEADER + size.to_bytes(8, "big")
    if isinstance(payload, Spool) and payload.error is not None:
        raise payload.error
    if isinstance(payload, Spool) and payload.atomic and payload.atomic.file is file:
        file.seek(0)
        file.write(prefix)
        file.seek(_HEADER_SIZE + size)
    else:
        file.write(prefix)
        if payload is not None:
            copy(payload, file)
    from ._largewrite import ChecksumWriter, padding  # a hit never writes

    result: object = stamp.result
    meta = _meta(stamp)
    if isinstance(result, Pickling):
        meta = _meta(stamp, padding(_HEADER_SIZE + size + len(meta), result.value))
    writer = ChecksumWriter(file, meta, zlib.crc32(prefix[len(_HEADER) :]))
    if isinstance(result, Pickling):
        pickle.dump(result.value, writer, protocol=-1)
    else:
        writer.write(result)
    file.write(writer.checksum.to_bytes(4, "big"))


def _meta(stamp: Stamp, padding: int = 0) -> bytes:
    # The meta length and the meta: everything of the stamp but its result,
    # and *padding* zero bytes, which marshal.loads ignores.
    payload = stamp.payload
    meta = marshal.dumps(
        (  # type: ignore[arg-type]  # about is marshal's types by contract
            stamp.created_ns,
            stamp.duration_ns,
            stamp.dependencies,
            stamp.outputs,
            stamp.about,
            None if payload is None else payload.crc,
        ),
        _MARSHAL_VERSION,
    ) + bytes(padding)
    return len(meta).to_bytes(4, "big") + meta


def is_stamp(head: bytes) -> bool:
    """
    Whether a file starting with *head* is a stamp file of any version:
    jobstamps lists and removes only those.
    """
    return head[: len(MAGIC)] == MAGIC


def unpack(data: bytes | memoryview | mmap.mmap) -> Stamp:
    """
    The stamp whose file holds *data*; its result is a view into *data*, and
    so is its payload's *data* unless *data* is a map of the file (a payload
    is then read from the file, not through the map).

    Raises:
        StampFormatError: *data* is not an intact stamp of this format.
    """
    view = memoryview(data)
    if len(view) < _HEADER_SIZE or bytes(view[:7]) != MAGIC:
        raise StampFormatError("not a stamp file (bad magic or truncated header)")
    if view[7] != FORMAT_VERSION:
        raise StampFormatError(f"stamp format version {view[7]}, not {FORMAT_VERSION}")
    size = int.from_bytes(view[8:_HEADER_SIZE], "big")
    start = _HEADER_SIZE + size
    end = len(view) - _TRAILER_SIZE
    if start + 4 > end:
        raise StampFormatError("checksum mismatch (truncated or corrupt)")
    checksum = int.from_bytes(view[end:], "big")
    meta_end = start + 4 + int.from_bytes(view[start : start + 4], "big")
    if (
        meta_end > end
        or zlib.crc32(view[start:end], zlib.crc32(view[8:_HEADER_SIZE])) != checksum
    ):
        raise StampFormatError("checksum mismatch (truncated or corrupt)")
    created_ns, duration_ns, dependencies, outputs, about, crc = _loads(
        view[start + 4 : meta_end]
    )
    payload = None
    if crc is not None:
        held = isinstance(data, bytes | bytearray | memoryview)
        payload = Payload(size, crc, view[_HEADER_SIZE:start] if held else None)
    return Stamp(
        created_ns,
        duration_ns,
        dependencies,
        outputs,
        view[meta_end:end],
        about,
        payload,
    )


def _loads(meta: bytes | memoryview) -> tuple[Any, ...]:
    try:
        fields = marshal.loads(meta)
        if type(fields) is not tuple or len(fields) != 6:
            raise ValueError("not the meta of this format")
    except (EOFError, ValueError, TypeError) as e:
        raise StampFormatError(f"unreadable metadata: {e}") from None
    return fields


def read_head(fd: int, head: bytes = b"") -> Stamp:
    """
    The stamp in the file open as *fd* without its result (left empty) or
    its payload's bytes: what listings need, read in one to three small
    reads whatever the stamp's size (*head*, the file's first bytes when the
    caller has read them already, saves one). The checksum can't be checked
    without the rest, so the fields are as found.

    Raises:
        StampFormatError: the file is not a stamp of this format.
        OSError: it can't be read.
    """
    if len(head) < _HEAD_READ:
        head = os.pread(fd, _HEAD_READ, 0)
    if len(head) < _HEADER_SIZE or head[:7] != MAGIC:
        raise StampFormatError("not a stamp file (bad magic or truncated header)")
    if head[7] != FORMAT_VERSION:
        raise StampFormatError(f"stamp format version {head[7]}, not {FORMAT_VERSION}")
    size = int.from_bytes(head[8:_HEADER_SIZE], "big")
    start = _HEADER_SIZE + size
    block = head[start:] if start + 4 <= len(head) else os.pread(fd, _HEAD_READ, start)
    length = int.from_bytes(block[:4], "big")
    if len(block) < 4 + length:
        block += os.pread(fd, 4 + length - len(block), start + len(block))
        if len(block) < 4 + length:
            raise StampFormatError("checksum mismatch (truncated or corrupt)")
    created_ns, duration_ns, dependencies, outputs, about, crc = _loads(
        block[4 : 4 + length]
    )
    payload = None if crc is None else Payload(size, crc)
    return Stamp(created_ns, duration_ns, dependencies, outputs, b"", about, payload)


# What read_head reads first: the header, and the meta of most stamps.
_HEAD_READ = 4096
