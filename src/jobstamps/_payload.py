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

import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from ._fs import AtomicFile

# Where a stamp's payload starts in its file: after the magic (7 bytes), the
# format version (1) and the payload's length (8).
PAYLOAD_OFFSET = 16
# Payloads are read in chunks of this many bytes.
_CHUNK = 1 << 20


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
        if self.error is None:
            self._write(data)
            self.size += len(data)
            self.crc = zlib.crc32(data, self.crc)

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
