"""
Standard input for ``jobstamp --stdin``: read to its end, digested, and
kept in a file to feed the command from (:func:`spool_stdin`), so that its
size costs disk, never memory, and the key holds its digest, not its bytes.

Imported only with ``--stdin``; knows files and digests, nothing of stamps.
"""

from __future__ import annotations

import os
import sys

from ._streams import CHUNK, write_all


def spool_stdin(folder: str) -> tuple[int, str]:
    """
    Standard input, read to its end: a descriptor to feed the command from
    (positioned where its bytes start), and their SHA-256.

    A regular file is hashed where it is and handed on as it is; anything
    else (a pipe, a terminal) is copied as it is hashed into a file of its
    own that no name leads to, in *folder* when possible, so its size costs
    disk, not memory.
    """
    import hashlib

    hasher = hashlib.sha256()
    stream = sys.stdin
    try:
        fd = -1 if stream is None else stream.fileno()
    except (AttributeError, OSError, ValueError):  # an io.StringIO, say
        fd = -1
    if fd >= 0:
        import stat

        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            start = os.lseek(fd, 0, os.SEEK_CUR)
            for chunk in _Reader(fd, start):
                hasher.update(chunk)
            return os.dup(fd), hasher.hexdigest()
    spool = _anonymous_file(folder)
    try:
        if fd >= 0:
            for chunk in _Reader(fd, None):
                hasher.update(chunk)
                write_all(spool, chunk)
        elif stream is not None:
            text = stream.read()
            data = (
                text
                if isinstance(text, bytes)
                else text.encode("utf-8", "surrogateescape")
            )
            hasher.update(data)
            write_all(spool, data)
        os.lseek(spool, 0, os.SEEK_SET)
    except BaseException:
        os.close(spool)
        raise
    return spool, hasher.hexdigest()


class _Reader:
    """
    The chunks left to read from *fd*: at *offset* on (leaving the file's
    position alone), or from where it is when *offset* is None.
    """

    __slots__ = ("_fd", "_offset", "_view")

    def __init__(self, fd: int, offset: int | None) -> None:
        self._fd = fd
        self._offset = offset
        self._view = memoryview(bytearray(CHUNK))

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> memoryview:
        view = self._view
        if self._offset is None:
            read = os.readv(self._fd, [view])
        else:
            read = os.preadv(self._fd, [view], self._offset)
            self._offset += read
        if not read:
            raise StopIteration
        return view[:read]


def _anonymous_file(folder: str) -> int:
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
    try:
        from . import _fs

        _fs.make_private_dirs(folder)
        try:
            return os.open(folder, flags | os.O_TMPFILE, 0o600)
        except (AttributeError, OSError):  # not Linux, or not this filesystem
            name = _fs.temporary_name(os.path.join(folder, "stdin"))
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600)
            os.unlink(name)
            return fd
    except OSError:
        import tempfile

        with tempfile.TemporaryFile() as file:
            return os.dup(file.fileno())
