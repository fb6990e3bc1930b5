"""
Running a command for the ``jobstamp`` command: :func:`run_command` starts
it, streams its stdout and stderr live while capturing them (the tee), feeds
it standard input, and passes signals on; :func:`replay` writes a stored
result back out.

This is the function the command line caches; this module knows nothing of
stamps or options. :mod:`subprocess`, :mod:`selectors` and :mod:`signal` are
imported only when a command actually runs, never on a cached run.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import TextIO

    Environment = tuple[tuple[str, str | None], ...]

# Part of every key: bump it when the shape of a stored result changes.
RESULT_VERSION = 1

_READ_SIZE = 1 << 16


class CommandNotStarted(Exception):
    """
    The command could not be started; *status* is what a shell would exit
    with (127 not found, 126 not executable).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CommandKilled(Exception):
    """
    The command was ended by signal *signum*; its result is not stamped.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"killed by signal {signum}")
        self.signum = signum


class Interrupted(Exception):
    """
    jobstamp itself got signal *signum* (SIGTERM, SIGHUP) while the command ran.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


# Results produced in this process, already shown live as the command ran:
# they must not be replayed a second time (see shown_live).
_shown: list[object] = []


def run_command(
    command: tuple[str, ...],
    cwd: str | None,
    environment: Environment,
    stdin: bytes | None,
) -> dict[str, object]:
    """
    Run *command*, streaming its stdout and stderr live while capturing them.

    This is the function the ``jobstamp`` command caches: its arguments are
    the key. *cwd* and *environment* are only there to be keyed (the command
    runs in the current directory with the current environment); *stdin*,
    when not None, is fed to the command.

    Returns:
        ``{"command": [...], "code": int, "stdout": bytes, "stderr": bytes}``.

    Raises:
        CommandNotStarted: the command was not found or is not executable.
        CommandKilled: a signal ended the command.
        Interrupted: jobstamp got SIGTERM or SIGHUP; the command was stopped.
        KeyboardInterrupt: jobstamp got SIGINT; the command was stopped.
    """
    stdout, stderr, code = _tee(list(command), stdin)
    if code < 0:
        raise CommandKilled(-code)
    result: dict[str, object] = {
        "command": list(command),
        "code": code,
        "stdout": stdout,
        "stderr": stderr,
    }
    _shown.append(result)
    return result


def _tee(argv: list[str], stdin: bytes | None) -> tuple[bytes, bytes, int]:
    import selectors
    import signal

    process = _start(argv, stdin)
    previous = _catch_termination()
    sinks: dict[int, tuple[list[bytes], _Sink]] = {
        process.stdout.fileno(): ([], _Sink(sys.stdout)),  # type: ignore[union-attr]
        process.stderr.fileno(): ([], _Sink(sys.stderr)),  # type: ignore[union-attr]
    }
    chunks: list[bytes]
    try:
        with selectors.DefaultSelector() as selector:
            for fd in sinks:
                selector.register(fd, selectors.EVENT_READ)
            feed = _Feed(process, stdin, selector)
            while selector.get_map():
                for key, _ in selector.select():
                    if key.fd == feed.fd:
                        feed.write()
                        continue
                    data = os.read(key.fd, _READ_SIZE)
                    chunks, sink = sinks[key.fd]
                    if data:
                        chunks.append(data)
                        sink.write(data)
                    else:
                        selector.unregister(key.fd)
        code = process.wait()
    except BaseException as e:
        _stop(process, e)
        raise
    finally:
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        for _, sink in sinks.values():
            sink.close()
        for signum, handler in previous:
            signal.signal(signum, handler)  # type: ignore[arg-type]
    out, err = (b"".join(chunks) for chunks, _ in sinks.values())
    return out, err, code


def _start(argv: list[str], stdin: bytes | None) -> subprocess.Popen[bytes]:
    import errno
    import shutil
    import subprocess

    name = argv[0]
    options: dict[str, object] = {
        "stdin": None if stdin is None else subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    try:
        return subprocess.Popen(argv, **options)  # type: ignore[call-overload, no-any-return]
    except FileNotFoundError:
        found = (
            os.path.exists(name) if os.sep in name else shutil.which(name) is not None
        )
        if found:  # the file is there, its interpreter is not
            raise CommandNotStarted(
                126, f"{name}: bad interpreter: No such file or directory"
            ) from None
        if os.sep in name:
            raise CommandNotStarted(127, f"{name}: No such file or directory") from None
        raise CommandNotStarted(127, f"{name}: command not found") from None
    except OSError as e:
        if e.errno == errno.ENOEXEC:
            # No "#!" line: run it with sh, as shells do.
            path = name if os.sep in name else shutil.which(name)
            if path is not None:
                try:
                    return subprocess.Popen(["/bin/sh", path, *argv[1:]], **options)  # type: ignore[call-overload, no-any-return]
                except OSError:
                    pass
        raise CommandNotStarted(126, f"{name}: {e.strerror or e}") from None


class _Feed:
    """
    Writes *data* to the command's stdin as the pipe accepts it.
    """

    __slots__ = ("_data", "_offset", "_pipe", "_selector", "fd")

    def __init__(
        self, process: subprocess.Popen[bytes], data: bytes | None, selector: object
    ) -> None:
        import selectors

        self._selector: selectors.BaseSelector = selector  # type: ignore[assignment]
        self._pipe = process.stdin
        self._data = memoryview(data or b"")
        self._offset = 0
        self.fd = -1
        if self._pipe is None:
            return
        if not self._data:
            self._pipe.close()
            return
        self.fd = self._pipe.fileno()
        os.set_blocking(self.fd, False)
        self._selector.register(self.fd, selectors.EVENT_WRITE)

    def write(self) -> None:
        try:
            self._offset += os.write(
                self.fd, self._data[self._offset : self._offset + _READ_SIZE]
            )
        except BlockingIOError:
            return
        except BrokenPipeError:  # the command stopped reading: fine
            self._offset = len(self._data)
        if self._offset >= len(self._data):
            self._selector.unregister(self.fd)
            assert self._pipe is not None
            self._pipe.close()
            self.fd = -1


def _catch_termination() -> list[tuple[int, object]]:
    import signal

    def interrupted(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous: list[tuple[int, object]] = []
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous.append((int(signum), signal.signal(signum, interrupted)))
        except ValueError:  # not the main thread: leave signals alone
            break
    return previous


def _stop(process: subprocess.Popen[bytes], error: BaseException) -> None:
    """
    Stop the command after jobstamp was interrupted, and wait for it.
    """
    import signal
    import subprocess

    if isinstance(error, Interrupted):
        signum = error.signum
    elif isinstance(error, KeyboardInterrupt):
        signum = signal.SIGINT
    else:
        signum = signal.SIGTERM
    # Closing our ends first: a command blocked writing to them must not
    # keep us waiting.
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    for timeout in (0.25, 5.0):
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            # A Ctrl-C at the terminal reached the command too; a signal sent
            # to jobstamp alone did not: pass it on.
            process.send_signal(signum)
        except KeyboardInterrupt:
            break
    process.kill()
    process.wait()


def shown_live(result: object) -> bool:
    """
    Whether *result* was produced by a run in this process, whose output was
    shown as it ran; it is forgotten then.
    """
    for i, shown in enumerate(_shown):
        if shown is result:
            del _shown[i]
            return True
    return False


def replay(result: dict[str, object]) -> int:
    """
    Write a stored result's stdout and stderr out again; its exit code.
    """
    for data, stream in (
        (result["stdout"], sys.stdout),
        (result["stderr"], sys.stderr),
    ):
        sink = _Sink(stream)
        sink.write(data)  # type: ignore[arg-type]
        sink.close()
    return result["code"]  # type: ignore[return-value]


def read_stdin() -> bytes:
    """
    All of standard input, as bytes.
    """
    stream = sys.stdin
    if stream is None:
        return b""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer.read()  # type: ignore[no-any-return]
    return stream.read().encode("utf-8", "surrogateescape")


class _Sink:
    """
    One of our output streams: bytes through its binary buffer when it has
    one, else decoded text (for io.StringIO and the like).
    """

    __slots__ = ("_binary", "_decoder", "_stream")

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._binary = getattr(stream, "buffer", None)
        self._decoder: object = None
        if stream is not None:
            # Text written before us must come out first.
            stream.flush()

    def write(self, data: bytes) -> None:
        stream = self._stream
        if stream is None or not data:
            return
        try:
            if self._binary is not None:
                self._binary.write(data)
                self._binary.flush()
            else:
                self._write_text(stream, data, final=False)
        except BrokenPipeError:
            self._broken(stream)

    def close(self) -> None:
        if (
            self._stream is not None
            and self._binary is None
            and self._decoder is not None
        ):
            try:
                self._write_text(self._stream, b"", final=True)
            except BrokenPipeError:
                self._broken(self._stream)

    def _write_text(self, stream: TextIO, data: bytes, final: bool) -> None:
        import codecs

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

    def _broken(self, stream: TextIO) -> None:
        # The reader went away (`jobstamp ... | head`). Keep capturing, stop
        # showing, and point the stream at /dev/null so Python's own flush
        # at exit does not complain.
        self._stream = None
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
