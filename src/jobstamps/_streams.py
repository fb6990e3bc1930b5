"""
A command's output as its stamp keeps it: written live while it is framed
into the stamp's payload (:class:`Tee`), checked and written out again on a
hit (:func:`replay`).

The payload of a command's stamp (:mod:`._stampfile`) is a sequence of
frames, one per chunk read from the command, in the order they were read::

    stream (1 byte: 1 stdout, 2 stderr) | length (4, big-endian) | bytes

so stdout and stderr stay separate, byte for byte, and a replay under
``2>&1`` interleaves them as the live run did. Nothing is ever held whole in
memory: chunks go to the spool as they come, and a replay checks the
payload's CRC-32 in one pass over the file before the first byte goes out,
then sends each frame from the file (``os.sendfile`` where the output
allows it).

A cached run imports this module, so it imports only :mod:`os`, :mod:`sys`
and :mod:`zlib` at the top. It knows output streams and files; nothing of
keys, jobs or options.
"""

from __future__ import annotations

import errno
import os
import sys
import zlib

from ._stampfile import PAYLOAD_OFFSET, Payload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

    from ._stampfile import Spool

STDOUT = 1
STDERR = 2
_FRAME_HEADER = 5
# Chunks read from a command, and from a stamp when it must be read, are at
# most this large; the memory a run or a replay needs stays about this.
CHUNK = 1 << 20
# Errors of sendfile that say "not for this kind of output": copy instead.
_NO_SENDFILE = frozenset(
    {
        errno.EINVAL,
        errno.ENOSYS,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EBADF,
        errno.ENOTSOCK,  # systems whose sendfile writes only to sockets
    }
)


class CorruptOutputError(Exception):
    """
    A stored output does not match its checksum: the stamp is no stamp.
    """


class Sink:
    """
    One of jobstamp's output streams.

    Bytes go straight to its file descriptor when it has one (what was
    written to the Python stream before is flushed first), else through its
    binary buffer, else decoded as UTF-8 (an ``io.StringIO``). Once the
    reader has gone (a closed pipe), :attr:`closed` is true and writes are
    dropped.
    """

    __slots__ = ("_binary", "_decoder", "_fd", "_sendfile", "_stream", "closed")

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._fd = -1
        self._sendfile = True
        self._binary: BinaryIO | None = None
        self._decoder: object = None
        self.closed = stream is None
        if stream is None:
            return
        try:
            # Text written before us must come out first.
            stream.flush()
            self._fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor
            self._binary = getattr(stream, "buffer", None)
            if self._binary is not None:
                self._binary.flush()

    def write(self, data: bytes | memoryview) -> bool:
        """
        Write *data*; False once the reader is gone.
        """
        if self.closed:
            return False
        if not data:
            return True
        try:
            if self._fd >= 0:
                write_all(self._fd, data)
            elif self._binary is not None:
                self._binary.write(data)
                self._binary.flush()
            else:
                self._write_text(data, final=False)
        except (OSError, ValueError):
            self._broken()
            return False
        return True

    def send(self, source: int, offset: int, count: int) -> bool:
        """
        Write *count* bytes of the file *source* from *offset*; False once
        the reader is gone.

        ``os.sendfile`` copies in the kernel: replaying 1 GiB from a stamp
        into a pipe takes 0.25 to 0.3 s that way, against 0.45 to 1.0 s with
        ``os.pread`` and ``os.write`` of 1 MiB chunks (what an output that
        refuses sendfile gets, say one opened to append); the check before
        it, a read of the payload and its CRC-32, takes 0.55 s more.

        Raises:
            CorruptOutputError: the file ends early.
        """
        while count and not self.closed:
            if self._fd >= 0 and self._sendfile:
                try:
                    sent = os.sendfile(self._fd, source, offset, count)
                except BlockingIOError:
                    _wait_writable(self._fd)
                    continue
                except OSError as e:
                    if e.errno not in _NO_SENDFILE:
                        self._broken()
                        return False
                    self._sendfile = False  # say, an output opened to append
                    continue
            else:
                sent = self._copy(source, offset, min(count, CHUNK))
            if not sent and not self.closed:
                raise CorruptOutputError("the stored output ends early")
            offset += sent
            count -= sent
        return not self.closed

    def _copy(self, source: int, offset: int, count: int) -> int:
        data = os.pread(source, count, offset)
        self.write(data)
        return len(data)

    def close(self) -> None:
        """
        Write what a text decoder still holds.
        """
        if self._decoder is not None and not self.closed:
            try:
                self._write_text(b"", final=True)
            except (OSError, ValueError):
                self._broken()

    def _write_text(self, data: bytes | memoryview, final: bool) -> None:
        import codecs

        stream = self._stream
        assert stream is not None
        if self._decoder is None:
            self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        text: str = self._decoder.decode(data, final)  # type: ignore[attr-defined]
        if not text:
            return
        try:
            stream.write(text)
        except UnicodeEncodeError:
            stream.write(
                text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            )
        stream.flush()

    def _broken(self) -> None:
        # The reader went away (`jobstamp ... | head`): nothing more is
        # written, and the descriptor is pointed at /dev/null so that
        # Python's own flush at exit has nothing to complain about.
        self.closed = True
        stream, self._stream = self._stream, None
        fd = self._fd
        if fd < 0 and stream is not None:
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:
            pass


def write_all(fd: int, data: bytes | memoryview) -> None:
    """
    Write all of *data* to the descriptor *fd*, waiting where it is
    non-blocking.
    """
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # an output left non-blocking by its owner
            _wait_writable(fd)


def _wait_writable(fd: int) -> None:
    import select

    select.select([], [fd], [])


def sinks() -> dict[int, Sink]:
    """
    jobstamp's stdout and stderr, as they are now.
    """
    return {STDOUT: Sink(sys.stdout), STDERR: Sink(sys.stderr)}


class Tee:
    """
    A command's output on its way: each chunk goes to its *sinks* live, and,
    framed, to *spool* (None: nothing is kept).
    """

    __slots__ = ("_sinks", "spool")

    def __init__(self, sinks: dict[int, Sink], spool: Spool | None) -> None:
        self._sinks = sinks
        self.spool = spool

    def chunk(self, stream: int, data: memoryview) -> bool:
        """
        Pass on a chunk read from *stream*; False once its sink is closed.
        """
        spool = self.spool
        if spool is not None:
            spool.write(bytes((stream,)) + len(data).to_bytes(4, "big"))
            spool.write(data)
        return self._sinks[stream].write(data)

    def close(self) -> None:
        for sink in self._sinks.values():
            sink.close()


def replay(payload: Payload, path: str, sinks: dict[int, Sink]) -> bool:
    """
    Check the stored output *payload* (in memory, or in the stamp file at
    *path*), then write its frames to *sinks* in their order.

    Returns:
        False if a reader went away: the rest was not written.

    Raises:
        CorruptOutputError: the output does not match its checksum (nothing
            was written then), or its frames are malformed.
    """
    try:
        if payload.data is not None:
            if zlib.crc32(payload.data) != payload.crc:
                raise CorruptOutputError("the stored output fails its checksum")
            return _replay_view(payload.data, sinks)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise CorruptOutputError(f"the stored output can't be read: {e}") from None
    try:
        _check_file(fd, payload)
        offset, end = PAYLOAD_OFFSET, PAYLOAD_OFFSET + payload.size
        while offset < end:
            header = os.pread(fd, _FRAME_HEADER, offset)
            stream, length = _frame(header, end - offset)
            offset += _FRAME_HEADER
            if not sinks[stream].send(fd, offset, length):
                return False
            offset += length
        return True
    finally:
        os.close(fd)
        for sink in sinks.values():
            sink.close()


def _check_file(fd: int, payload: Payload) -> None:
    """
    The payload in the stamp file *fd* is the one recorded: its length in
    the header, then its CRC-32, in one pass of reads (no map, so the file
    does not count towards this process's memory).
    """
    head = os.pread(fd, PAYLOAD_OFFSET, 0)
    if int.from_bytes(head[8:PAYLOAD_OFFSET], "big") != payload.size:
        raise CorruptOutputError("the stamp file changed")
    buffer = bytearray(min(CHUNK, max(payload.size, 1)))
    view = memoryview(buffer)
    crc = 0
    offset, left = PAYLOAD_OFFSET, payload.size
    while left:
        read = os.preadv(fd, [view[: min(left, len(view))]], offset)
        if not read:
            raise CorruptOutputError("the stored output is cut short")
        crc = zlib.crc32(view[:read], crc)
        offset += read
        left -= read
    if crc != payload.crc:
        raise CorruptOutputError("the stored output fails its checksum")


def _replay_view(data: memoryview, sinks: dict[int, Sink]) -> bool:
    try:
        offset = 0
        while offset < len(data):
            stream, length = _frame(
                bytes(data[offset : offset + _FRAME_HEADER]), len(data) - offset
            )
            offset += _FRAME_HEADER
            if not sinks[stream].write(data[offset : offset + length]):
                return False
            offset += length
        return True
    finally:
        for sink in sinks.values():
            sink.close()


def _frame(header: bytes, left: int) -> tuple[int, int]:
    if len(header) != _FRAME_HEADER or header[0] not in (STDOUT, STDERR):
        raise CorruptOutputError("the stored output has a malformed frame")
    length = int.from_bytes(header[1:], "big")
    if _FRAME_HEADER + length > left:
        raise CorruptOutputError("the stored output has a malformed frame")
    return header[0], length
