"""
Running a command for the ``jobstamp`` command: :func:`run_command` starts
it, writes its stdout and stderr live while they are framed into a spool
(:mod:`._streams`), and passes signals on, as a shell running it as a
single foreground job would.

Signals follow coreutils ``timeout``. When standard input is not a terminal
(CI, make, a script), the command runs in a process group of its own, and
SIGTERM, SIGHUP and SIGINT sent to jobstamp go to that whole group, so that
no process of it outlives jobstamp (those still there a second later, or
after the command ended, are killed). When standard input is a terminal
(``timeout --foreground``), the command stays in the terminal's foreground
group: Ctrl-C and Ctrl-Z reach it from the terminal as without jobstamp,
and a SIGTERM or SIGHUP sent to jobstamp alone is passed to the command,
not its children.

This is the function the command line caches; this module knows nothing of
stamps or options. :mod:`subprocess`, :mod:`selectors` and :mod:`signal` are
imported only when a command actually runs, never on a cached run.
"""

from __future__ import annotations

import os
import time

from ._stampfile import Attached
from ._streams import STDERR, STDOUT, Tee, sinks

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from ._stampfile import Spool

    Environment = tuple[tuple[str, str | None], ...]

# Part of every key: bump it when the shape of a stored result changes.
# 2: the output is the stamp's payload, in frames.
RESULT_VERSION = 2

_CHUNK = 1 << 20
# F_SETPIPE_SZ: larger pipes from the command mean fewer, larger reads.
_SET_PIPE_SIZE = 1031
# Seconds the processes signalled on jobstamp's behalf have to end before
# they are killed, and to close their output once the command ended.
_GRACE = 1.0
_DRAIN = 0.5
_POLL = 0.05


class CommandNotStarted(Exception):
    """
    The command could not be started; *status* is what a shell would exit
    with (127 not found, 126 not executable).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Context:
    """
    What a run of the command needs besides its key, and what it tells back.

    *about* describes the call for listings (stored with the output), *stdin*
    is the descriptor to feed the command from (None: it inherits
    jobstamp's), *spool* opens the spool the output is kept in (None: keep
    nothing), and *foreground* says whether standard input is a terminal.
    After a run, *status* is its exit status as a shell gives it (128+N for
    signal N), *complete* whether its output is whole and worth keeping (no
    signal, no reader gone), and *result* what it returned.
    """

    __slots__ = (
        "about",
        "complete",
        "foreground",
        "result",
        "spool",
        "status",
        "stdin",
    )

    def __init__(
        self,
        about: dict[str, object] | None = None,
        stdin: int | None = None,
        spool: Callable[[], Spool] | None = None,
        foreground: bool = False,
    ) -> None:
        self.about = about or {}
        self.stdin = stdin
        self.spool = spool
        self.foreground = foreground
        self.complete = False
        self.status = 0
        self.result: object = None


def run_command(
    command: tuple[str, ...],
    cwd: str | None,
    environment: Environment,
    stdin: str | None,
    context: Context | None = None,
) -> Attached:
    """
    Run *command*, writing its stdout and stderr live while they are kept.

    This is the function the ``jobstamp`` command caches: its arguments but
    *context* are the key. *cwd* and *environment* are only there to be
    keyed (the command runs in the current directory with the current
    environment), and *stdin* is the digest of what *context* feeds it.

    Returns:
        ``{"code": status}`` with the call's *about* and the framed output
        as its payload (:class:`~._stampfile.Attached`).

    Raises:
        CommandNotStarted: the command was not found or is not executable.
    """
    context = context or Context()
    # Signals are caught before the command starts, so none is lost between.
    signals = _Signals(context.foreground)
    spool = None
    try:
        process = _start(list(command), context)
        signals.attach(process)
        if context.spool is not None:
            spool = context.spool()
        tee = Tee(sinks(), spool)
        try:
            code, cut = _tee(process, tee, signals)
        finally:
            tee.close()
    except BaseException:
        if spool is not None:
            spool.discard()
        raise
    finally:
        signals.restore()
    context.status = code if code >= 0 else 128 - code
    context.complete = code >= 0 and not cut
    result = Attached(
        {"code": context.status}, dict(context.about, code=context.status), spool
    )
    context.result = result
    return result


def _start(argv: list[str], context: Context) -> subprocess.Popen[bytes]:
    import errno
    import shutil
    import subprocess

    name = argv[0]
    options: dict[str, object] = {
        "stdin": context.stdin,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        # Its own process group, unless it must share the terminal.
        "process_group": None if context.foreground else 0,
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


def _tee(
    process: subprocess.Popen[bytes], tee: Tee, signals: _Signals
) -> tuple[int, bool]:
    """
    Pass the command's output on until it ends; its return code (negative
    for a signal), and whether its output was cut (a signal to jobstamp, or
    a reader gone).
    """
    import selectors

    assert process.stdout is not None and process.stderr is not None
    streams = {process.stdout.fileno(): STDOUT, process.stderr.fileno(): STDERR}
    pipes = {
        process.stdout.fileno(): process.stdout,
        process.stderr.fileno(): process.stderr,
    }
    _enlarge(streams)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    cut = False
    try:
        with selectors.DefaultSelector() as selector:
            for fd in streams:
                selector.register(fd, selectors.EVENT_READ)
            if signals.wake >= 0:
                selector.register(signals.wake, selectors.EVENT_READ)
            while streams:
                events = selector.select(signals.timeout())
                if signals.handle():
                    break  # the output stays open after all was stopped
                for key, _ in events:
                    fd = key.fd
                    if fd == signals.wake:
                        signals.drain()
                        continue
                    read = os.readv(fd, [buffer])
                    stream = streams.get(fd)
                    if stream is not None and read and tee.chunk(stream, view[:read]):
                        continue
                    if read:
                        # Our reader went away: so does the command's, and
                        # its next write gets EPIPE or SIGPIPE, as it would
                        # have without jobstamp in the pipeline.
                        cut = True
                    selector.unregister(fd)
                    pipes.pop(fd).close()
                    streams.pop(fd, None)
        for pipe in pipes.values():
            pipe.close()
        code = signals.wait()
    except BaseException:
        signals.kill()
        process.wait()
        raise
    finally:
        for pipe in pipes.values():
            pipe.close()
    return code, cut or signals.received is not None


def _enlarge(streams: dict[int, int]) -> None:
    import fcntl

    for fd in streams:
        try:
            fcntl.fcntl(fd, _SET_PIPE_SIZE, _CHUNK)
        except OSError:  # over the system's limit: the default size works
            pass


class _Signals:
    """
    SIGTERM, SIGHUP and SIGINT while the command runs: recorded by their
    handlers (which also wake the loop through :attr:`wake`), and passed on
    by :meth:`handle` in the loop, as the module says.
    """

    def __init__(self, foreground: bool) -> None:
        import signal

        self._process: subprocess.Popen[bytes] | None = None
        self._foreground = foreground
        self._pending: list[int] = []
        self._previous: list[tuple[int, object]] = []
        self._wakeup = -1
        self.wake = -1
        self.received: int | None = None
        self._kill_at: float | None = None
        self._drain_until: float | None = None

        def record(signum: int, frame: object) -> None:
            self._pending.append(signum)

        try:
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                self._previous.append((signum, signal.signal(signum, record)))
            read, write = os.pipe()
            os.set_blocking(write, False)
            self._wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            self.wake, self._write = read, write
        except ValueError:  # not the main thread: signals are not ours
            pass

    def attach(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def timeout(self) -> float | None:
        return None if self.received is None else _POLL

    def wait(self) -> int:
        """
        The command's return code, once it ends, passing signals on meanwhile
        (it may run on after closing its output).
        """
        import select

        process = self._process
        assert process is not None
        delay = 0.001
        while (code := process.poll()) is None:
            self.handle()
            ready = [self.wake] if self.wake >= 0 else []
            if select.select(ready, [], [], delay)[0]:
                self.drain()
            delay = min(delay * 2, 0.1)
        return code

    def drain(self) -> None:
        try:
            os.read(self.wake, 512)
        except BlockingIOError:
            pass

    def handle(self) -> bool:
        """
        Pass on the signals received since the last call, and kill what is
        left once its time is up; True when the output should no longer be
        waited for.
        """
        import signal

        now = time.monotonic()
        while self._pending:
            signum = self._pending.pop(0)
            if self.received is None:
                self.received = signum
                if not self._foreground or signum != signal.SIGINT:
                    # Ctrl-C at a terminal is the command's to handle, as it
                    # would be without jobstamp; anything else must end it.
                    self._kill_at = now + _GRACE
            self._forward(signum)
        if self.received is None:
            return False
        assert self._process is not None
        ended = self._process.poll() is not None
        if self._kill_at is not None and (ended or now >= self._kill_at):
            # What is left of the group once the command ended (or the
            # command itself, once its time is up) is killed.
            self._kill_at = None
            self._signal(signal.SIGKILL, everyone=True)
        if ended and self._drain_until is None:
            self._drain_until = now + _DRAIN
        return self._drain_until is not None and now >= self._drain_until

    def _forward(self, signum: int) -> None:
        import signal

        if not self._foreground:
            self._signal(signum, everyone=True)
            if signum not in (signal.SIGKILL, signal.SIGCONT):
                self._signal(signal.SIGCONT, everyone=True)  # stopped ones too
        elif signum != signal.SIGINT:
            # The terminal sends Ctrl-C to the command itself; anything else
            # sent to jobstamp alone goes to the command alone.
            self._signal(signum, everyone=False)

    def _signal(self, signum: int, everyone: bool) -> None:
        if self._process is None:
            return
        try:
            if everyone and not self._foreground:
                os.killpg(self._process.pid, signum)
            elif self._process.poll() is None:
                os.kill(self._process.pid, signum)
        except OSError:  # gone already
            pass

    def kill(self) -> None:
        import signal

        self._signal(signal.SIGKILL, everyone=True)

    def restore(self) -> None:
        import signal

        for signum, handler in self._previous:
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if self.wake >= 0:
            signal.set_wakeup_fd(self._wakeup)
            os.close(self.wake)
            os.close(self._write)
            self.wake = -1
