"""
Writing a large stamp fast: the CRC-32 taken in a second thread while a
large result is written (:class:`ChecksumWriter`), and the padding that
makes its bytes land in the file at the offset they have in memory
(:func:`padding`). Each is a speed trick kept for the figure next to it;
what they write is :mod:`._stampfile`'s format, which this module does not
know.
"""

from __future__ import annotations

import _thread
import sys
import zlib

try:
    import _pickle as pickle  # as _stampfile, to pickle the same bytes
except ImportError:  # pragma: no cover - other interpreters
    import pickle  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Results larger than this are checksummed in a second thread as they are
# written (see ChecksumWriter).
_LARGE_BYTES = 1024 * 1024

# Where the bytes of a bytes object start, from its id() (CPython); 0 where
# that is not known.
_BYTES_DATA = sys.getsizeof(b"") - 1 if sys.implementation.name == "cpython" else 0
_ALIGNMENT = 64


def padding(offset: int, value: object) -> int:
    """
    How many zero bytes to end the meta with, had it ended at *offset*, so
    that the bytes of a large *value* land in the file at the offset they
    have in memory, modulo 64: the kernel then copies them into the page
    cache about twice as fast. Stamping the 200 MB result of scenario 6 of
    benchmarks/run.py takes 150 to 210 ms without (against 70 to 150 ms for
    the layout before the payload moved the result by a few bytes), and a
    plain write of 200 MB from an offset that agrees with its address takes
    75 ms where one that does not takes 160 ms.
    """
    if type(value) is not bytes or not _BYTES_DATA:
        return 0
    probe = _Probe()
    try:
        pickle.dump(value, probe, protocol=-1)
    except _Found:
        return (id(value) + _BYTES_DATA - offset - probe.size) % _ALIGNMENT
    return 0


class _Found(Exception):
    pass


class _Probe:
    # Counts what pickle writes before the bytes of a large value.
    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        if len(data) > _LARGE_BYTES:
            raise _Found
        self.size += len(data)
        return len(data)


class ChecksumWriter:
    """
    Writes to *file* the meta and what comes after it, keeping their CRC-32
    on from *checksum*.
    """

    __slots__ = ("checksum", "file")

    def __init__(self, file: Any, meta: bytes, checksum: int) -> None:
        self.file = file
        file.write(meta)
        self.checksum = zlib.crc32(meta, checksum)

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
