"""
The payload of a stamp: raw bytes kept beside its pickled result (a
command's output), where they are (:class:`Payload`), how a run writes them
straight into the temporary file of the stamp that will hold them
(:class:`Spool`), and how they are read back in chunks.

A stamp file's payload starts at :data:`PAYLOAD_OFFSET`, right after its
header (:mod:`._stampfile`, which owns the rest of the layout). This module
knows bytes and files; nothing of what a payload means.
"""

from __future__ import annotations

import _thread
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

    from ._fs import AtomicFile

# Where a stamp's payload starts in its file: after the magic (7 bytes), the
# format version (1) and the payload's length (8).
PAYLOAD_OFFSET = 16
# Payloads are read in chunks of this many bytes.
_CHUNK = 1 << 20
# Chunks at least this large are checksummed in a second thread while they
# are written (see write_and_checksum): on a miss of 1 GiB through the
# spool (scenario 8 of benchmarks/run.py), what the CRC-32 costs overlaps
# the write instead of adding to it.
_THREADED = 256 * 1024


class PayloadChangedError(OSError):
    """
    A payload copied from a stamp file did not match its checksum: the file
    was replaced or damaged meanwhile.
    """


class Payload:
    """
    The raw bytes of a stamp: *size*, their CRC-32, and where they are.

    Read from a stamp held in memory, *data* is a view of them; read from a
    mapped or partly read file it is None, and they are read from the stamp
    file (whose path the reader knows) at :data:`PAYLOAD_OFFSET`.
    """

    __slots__ = ("crc", "data", "path", "size")

    def __init__(
        self,
        size: int,
        crc: int,
        data: memoryview | None = None,
        path: str | None = None,
    ) -> None:
        self.size = size
        self.crc = crc
        self.data = data
        # The stamp file holding the bytes, when known.
        self.path = path


class Spool(Payload):
    """
    A payload being written straight into the temporary file of the stamp
    that will hold it (*atomic*, an :class:`~._fs.AtomicFile` beside
    *path*), after room for the header: saving that stamp at *path*
    finishes this file and renames it into place, with no copy.

    A write that fails (disk full) is kept as *error*, and raised when the
    stamp is written, so that the stamp is not.
    """

    __slots__ = ("atomic", "error")

    def __init__(self, atomic: AtomicFile | None, path: str) -> None:
        super().__init__(0, 0, None, path)
        self.atomic = atomic
        self.error: OSError | None = None
        if atomic is not None:
            self._write(bytes(PAYLOAD_OFFSET))

    @classmethod
    def failed(cls, error: OSError, path: str) -> Spool:
        """
        A spool that could not even be opened.
        """
        spool = cls(None, path)
        spool.error = error
        return spool

    def write(self, data: bytes | memoryview) -> None:
        if self.error is not None:
            return
        if len(data) >= _THREADED:
            assert self.atomic is not None
            try:
                self.crc = write_and_checksum(self.atomic.file, data, self.crc)
            except OSError as e:
                self.error = e
        else:
            self._write(data)
            self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def _write(self, data: bytes | memoryview) -> None:
        assert self.atomic is not None
        try:
            self.atomic.file.write(data)
        except OSError as e:
            self.error = e

    def discard(self) -> None:
        """
        Remove the file, unless a stamp took it.
        """
        if self.atomic is not None:
            self.atomic.__exit__(None, None, None)


def copy(payload: Payload, file: BinaryIO) -> None:
    """
    Write *payload* to *file*, from memory or from its stamp file, checked
    against its CRC-32 on the way.

    Raises:
        PayloadChangedError: the stamp file no longer holds it.
        OSError: it can't be read or written.
    """
    if payload.data is not None:
        file.write(payload.data)
        return
    crc = 0
    for chunk in payload_chunks(payload):
        crc = zlib.crc32(chunk, crc)
        file.write(chunk)
    if crc != payload.crc:
        raise PayloadChangedError(f"the payload of {payload.path} changed")


def payload_chunks(payload: Payload) -> Iterator[memoryview]:
    """
    The bytes of *payload*, read from its stamp file in chunks (its checksum
    is the caller's to check).

    Raises:
        OSError: the file can't be read, or is shorter than the payload.
    """
    if payload.path is None:
        raise FileNotFoundError("a payload without data names no stamp file")
    buffer = bytearray(min(_CHUNK, max(payload.size, 1)))
    view = memoryview(buffer)
    with open(payload.path, "rb", buffering=0) as source:
        source.seek(PAYLOAD_OFFSET)
        left = payload.size
        while left:
            read = source.readinto(view[: min(left, len(view))])
            if not read:
                raise PayloadChangedError(f"the payload of {payload.path} is cut")
            left -= read
            yield view[:read]


def read(payload: Payload) -> bytes:
    """
    *payload* whole, checked: for stamps small enough to hold in memory.
    """
    data = b"".join(bytes(chunk) for chunk in payload_chunks(payload))
    if zlib.crc32(data) != payload.crc:
        raise PayloadChangedError(f"the payload of {payload.path} changed")
    return data


def write_and_checksum(file: Any, data: Any, checksum: int) -> int:
    """
    Write *data* to *file* while its CRC-32 is taken on from *checksum* in
    another thread; the new checksum.
    """
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
