"""
The stamp record and its file format: :class:`Stamp`, :func:`pack`,
:func:`unpack`, :func:`write`, the checksum, and how a result is pickled
into a stamp and out of it.

A stamp file is::

    MAGIC (7 bytes) | format version (1) | meta length (4) | meta (marshal) |
    result (pickle) | CRC-32 (4)

The CRC-32 covers everything between the version and itself, the meta length
included; at the end, it can be computed while a large result is pickled
straight into the file. Bytes that are truncated, of another format version
or fail their checksum are no stamp at all (:class:`StampFormatError`).

This module knows bytes only: not where stamps live (:mod:`._store`), nor
whether one is fresh (:mod:`._freshness`).
"""

from __future__ import annotations

import _thread
import marshal
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from typing import Any, BinaryIO

    from ._methods import Fingerprint

    Dependencies = tuple[tuple[str, Fingerprint | None], ...]
    # (path, SHA-256 of the contents kept for restoring it or None, mode)
    Outputs = tuple[tuple[str, str | None, int], ...]

MAGIC = b"JOBSTMP"
# 2: the checksum also covers the meta length.
# 3: the checksum moved to the end of the file.
# 4: stamps record how long their run took (duration_ns).
FORMAT_VERSION = 4
_HEADER = MAGIC + bytes([FORMAT_VERSION])
_HEADER_SIZE = len(_HEADER) + 4
_TRAILER_SIZE = 4
_MARSHAL_VERSION = 4

# Part of every key: a stamp is only ever read by the same stamp format and
# the same Python (pickles of one minor version may not load in another).
KEY_CONTEXT = b"stamp-format=%d;python=%d.%d" % (FORMAT_VERSION, *sys.version_info[:2])

# Results larger than this are checksummed in a second thread as they are
# written (see _write_and_checksum).
_LARGE_BYTES = 1024 * 1024


class Stamp:
    """
    What one run of a job saw and returned.
    """

    __slots__ = ("created_ns", "dependencies", "duration_ns", "outputs", "result")

    def __init__(
        self,
        created_ns: int,
        duration_ns: int,
        dependencies: Dependencies,
        outputs: Outputs,
        result: bytes | memoryview | Pickling,
    ) -> None:
        # When the run started (wall clock), and how long the function took.
        self.created_ns = created_ns
        self.duration_ns = duration_ns
        self.dependencies = dependencies
        self.outputs = outputs
        # The pickled return value; callers unpickle it on every hit so that
        # no two callers share one mutable object. (A Pickling only in a
        # stamp on its way to write(); stamps read back always hold bytes.)
        self.result: bytes | memoryview = result  # type: ignore[assignment]


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
    return pickle.dumps(result, protocol=-1)  # -1: the highest protocol


def unpickled(stamp: Stamp) -> object:
    """
    The result *stamp* holds, a new object on every call (no two callers
    share one mutable result).

    Raises:
        Exception: whatever unpickling raises (say, its class was renamed).
    """
    return pickle.loads(stamp.result)


class StampFormatError(ValueError):
    """
    The bytes of a stamp file are not a stamp this version can read.
    """


def pack(stamp: Stamp) -> tuple[bytes, bytes, bytes | memoryview, bytes]:
    """
    The header, meta, result and trailer sections of *stamp*'s file, in
    order: joined, they are the file.
    """
    result: object = stamp.result
    if isinstance(result, Pickling):  # whole, here; write() needs no copy
        result = pickle.dumps(result.value, protocol=-1)
    assert isinstance(result, bytes | memoryview)
    header = _header(stamp)
    checksum = zlib.crc32(result, zlib.crc32(memoryview(header)[len(_HEADER) :]))
    return (
        header[: len(_HEADER)],
        header[len(_HEADER) :],
        result,
        checksum.to_bytes(4, "big"),
    )


def write(file: BinaryIO, stamp: Stamp) -> None:
    """
    Write *stamp*'s file to *file*, pickling a :class:`Pickling` result
    straight into it.
    """
    writer = _ChecksumWriter(file, _header(stamp))
    result: object = stamp.result
    if isinstance(result, Pickling):
        pickle.dump(result.value, writer, protocol=-1)
    else:
        writer.write(result)
    file.write(writer.checksum.to_bytes(4, "big"))


def _header(stamp: Stamp) -> bytes:
    # Everything before the result: magic, version, meta length and meta.
    meta = marshal.dumps(
        (stamp.created_ns, stamp.duration_ns, stamp.dependencies, stamp.outputs),
        _MARSHAL_VERSION,
    )
    return _HEADER + len(meta).to_bytes(4, "big") + meta


def is_stamp(head: bytes) -> bool:
    """
    Whether a file starting with *head* is a stamp file of any version:
    jobstamps lists and removes only those.
    """
    return head[: len(MAGIC)] == MAGIC


def unpack(data: bytes | memoryview | mmap.mmap) -> Stamp:
    """
    The stamp whose file holds *data*; its result is a view into *data*.

    Raises:
        StampFormatError: *data* is not an intact stamp of this format.
    """
    view = memoryview(data)
    if len(view) < _HEADER_SIZE + _TRAILER_SIZE or bytes(view[:7]) != MAGIC:
        raise StampFormatError("not a stamp file (bad magic or truncated header)")
    if view[7] != FORMAT_VERSION:
        raise StampFormatError(f"stamp format version {view[7]}, not {FORMAT_VERSION}")
    end = len(view) - _TRAILER_SIZE
    checksum = int.from_bytes(view[end:], "big")
    meta_end = _HEADER_SIZE + int.from_bytes(view[8:12], "big")
    if meta_end > end or zlib.crc32(view[8:end]) != checksum:
        raise StampFormatError("checksum mismatch (truncated or corrupt)")
    try:
        created_ns, duration_ns, dependencies, outputs = marshal.loads(
            view[_HEADER_SIZE:meta_end]
        )
    except (EOFError, ValueError, TypeError) as e:
        raise StampFormatError(f"unreadable metadata: {e}") from None
    return Stamp(created_ns, duration_ns, dependencies, outputs, view[meta_end:end])


class _ChecksumWriter:
    """
    Writes to *file* what comes after *header*, keeping the CRC-32 of all
    of it but the magic and version.
    """

    __slots__ = ("checksum", "file")

    def __init__(self, file: Any, header: bytes) -> None:
        self.file = file
        file.write(header)
        self.checksum = zlib.crc32(memoryview(header)[len(_HEADER) :])

    def write(self, data: Any) -> int:
        if len(data) > _LARGE_BYTES:
            self.checksum = _write_and_checksum(self.file, data, self.checksum)
        else:
            self.checksum = zlib.crc32(data, self.checksum)
            self.file.write(data)
        return len(data)


def _write_and_checksum(file: Any, data: Any, checksum: int) -> int:
    # Both zlib.crc32 and the write let go of the GIL over large buffers: the
    # checksum is taken in another thread while the data is written. On
    # scenario 6 of benchmarks/run.py (a 200 MB result) this makes stamping
    # 40-45% faster than a write after one zlib.crc32 (96-105 ms against
    # 158-193 ms), which alone would miss the target of 0.5x a plain write
    # (0.37-0.43x, against 0.72-0.79x). (_thread, not threading: threading
    # costs an import on every cached `jobstamp` run.)
    done = _thread.allocate_lock()
    done.acquire()
    outcome: list[object] = []

    def crc() -> None:
        try:
            outcome.append(zlib.crc32(data, checksum))
        except BaseException as e:  # pragma: no cover - out of memory, say
            outcome.append(e)
        finally:
            done.release()

    try:
        _thread.start_new_thread(crc, ())
    except RuntimeError:  # pragma: no cover - no threads left
        file.write(data)
        return zlib.crc32(data, checksum)
    try:
        file.write(data)
    finally:
        done.acquire()
    value = outcome[0]
    if isinstance(value, BaseException):  # pragma: no cover
        raise value
    return value  # type: ignore[return-value]
