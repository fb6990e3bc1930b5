"""
The ``jobstamp`` command: run a command once, replay its output afterwards.

``jobstamp [OPTIONS] -- CMD ARGS...`` is a client of :class:`._core.Job`:
the cached function is :func:`run_command`, keyed on the command line (and,
when asked, the working directory, some environment variables and standard
input). On a miss the command's output streams to the terminal while it is
captured; on a hit the stored stdout, stderr and exit code are replayed.

A cached run is meant to cost little more than starting Python, so this
module imports only what a hit needs; :mod:`subprocess`, :mod:`selectors`
and :mod:`signal` are imported when a command actually runs, and the option
parser is a small table-driven one rather than :mod:`argparse`.
"""

from __future__ import annotations

import os
import sys

from ._core import Job
from .exceptions import RemoteStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence
    from typing import TextIO

    Environment = tuple[tuple[str, str | None], ...]

PROG = "jobstamp"

# Part of every key: bump it when the shape of a stored result changes.
RESULT_VERSION = 1

# The exit status of jobstamp's own errors (bad options, unusable stamp
# directory), as argparse has it.
USAGE_ERROR = 2

_READ_SIZE = 1 << 16


# ---------------------------------------------------------------------------
# Running a command (a miss)


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
# they must not be replayed a second time.
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


# ---------------------------------------------------------------------------
# Output


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


def _replay(result: dict[str, object]) -> int:
    for data, stream in (
        (result["stdout"], sys.stdout),
        (result["stderr"], sys.stderr),
    ):
        sink = _Sink(stream)
        sink.write(data)  # type: ignore[arg-type]
        sink.close()
    return result["code"]  # type: ignore[return-value]


def _say(text: str, stream: TextIO | None = None) -> None:
    stream = sys.stdout if stream is None else stream
    if stream is not None:
        stream.write(text)
        stream.flush()


def _error(message: str) -> None:
    _say(f"{PROG}: {message}\n", sys.stderr)


class UsageError(Exception):
    """
    A bad option or value: one line on stderr, exit status 2.
    """


# ---------------------------------------------------------------------------
# Options


_FLAG = "flag"  # --force
_ONE = "one"  # --ttl 10m (given again, the last one counts)
_EACH = "each"  # --env A --env B (every one counts)
_LIST = "list"  # --dependencies a b c (every value up to the next option)


class _Option:
    __slots__ = ("dest", "help", "kind", "metavar", "names")

    def __init__(
        self, names: tuple[str, ...], kind: str, help: str, metavar: str = ""
    ) -> None:
        self.names = names
        self.dest = next(n for n in names if n.startswith("--"))[2:].replace("-", "_")
        self.kind = kind
        self.metavar = metavar
        self.help = help

    def usage(self) -> str:
        value = {
            _FLAG: "",
            _ONE: f" {self.metavar}",
            _EACH: f" {self.metavar}",
            _LIST: f" {self.metavar}...",
        }
        return ", ".join(self.names) + value[self.kind]


_STAMP_DIRECTORY = _Option(
    ("--stamp-directory",),
    _ONE,
    "Keep stamps in DIR instead of $JOBSTAMPS_CACHE_DIR or the user's cache "
    "directory (~/.cache/jobstamps).",
    "DIR",
)
_HELP = _Option(("-h", "--help"), _FLAG, "Show this help and exit.")

_COMMAND_OPTIONS = (
    _Option(
        ("--dependencies",),
        _LIST,
        "Files the command reads: if one changed since the command last ran "
        "(or is added to or removed from the list), it runs again. May be "
        "given more than once.",
        "PATH",
    ),
    _Option(
        ("--output-files",),
        _LIST,
        "Files the command writes: if one is missing, it runs again. May be "
        "given more than once.",
        "PATH",
    ),
    _STAMP_DIRECTORY,
    _Option(
        ("--use-hashes",),
        _FLAG,
        "Compare dependencies by content (SHA-256) instead of modification "
        "time: slower, but a file copied, checked out or touched with the "
        "same content is not a change.",
    ),
    _Option(
        ("--store",),
        _ONE,
        "Share stamps through the remote store at URL (redis://host:6379/0, "
        "s3://bucket/prefix, any fsspec URL), read when the local stamp "
        "misses and written after a run; default $JOBSTAMPS_STORE. Entries are "
        "signed with $JOBSTAMPS_SECRET. Only --use-hashes stamps are shared.",
        "URL",
    ),
    _Option(
        ("--restore-outputs",),
        _FLAG,
        "Keep the contents of the --output-files with the stamp, so that a "
        "hit whose outputs are missing writes them back instead of running.",
    ),
    _Option(
        ("--cwd",),
        _FLAG,
        "Make the working directory part of the key: the same command run "
        "from another directory runs again.",
    ),
    _Option(
        ("--env",),
        _EACH,
        "Make the value of environment variable NAME part of the key (unset "
        "and empty differ). Repeat for more variables.",
        "NAME",
    ),
    _Option(
        ("--stdin",),
        _FLAG,
        "Read standard input to its end, make its bytes part of the key, and "
        "feed them to the command. Without it the command inherits standard "
        "input, which is not part of the key.",
    ),
    _Option(
        ("--ttl",),
        _ONE,
        "A stored result older than DURATION (counted from when its run "
        "started) is stale: 90s, 10m, 2h, 1d, 1w, or combined, 1h30m; a bare "
        "number is seconds.",
        "DURATION",
    ),
    _Option(
        ("--discard-failures",),
        _FLAG,
        "Do not store the result of a run that exits non-zero, so a failing "
        "command runs every time.",
    ),
    _Option(
        ("--force",),
        _FLAG,
        "Run the command and store its result even if the stored one is fresh.",
    ),
    _Option(
        ("--dry-run", "--why"),
        _FLAG,
        "Do not run anything: print whether the command would run and why "
        "(the file that is out of date), then exit 0.",
    ),
    _HELP,
    _Option(("--version",), _FLAG, "Show jobstamps' version and exit."),
)

_ALL = _Option(
    ("--all",),
    _FLAG,
    "Every stamp in the directory, including those of Python functions "
    "cached with jobstamps, not only the commands'.",
)
_CACHE_OPTIONS = {
    "ls": (_STAMP_DIRECTORY, _ALL, _HELP),
    "prune": (
        _Option(
            ("--older-than",),
            _ONE,
            "Remove entries older than DURATION (as for --ttl).",
            "DURATION",
        ),
        _Option(
            ("--max-size",),
            _ONE,
            "Then remove the oldest entries until the rest take at most SIZE: "
            "bytes, or with K, M, G or T (powers of 1024), say 500M.",
            "SIZE",
        ),
        _STAMP_DIRECTORY,
        _ALL,
        _HELP,
    ),
    "clear": (_STAMP_DIRECTORY, _ALL, _HELP),
}
_CACHE_SUMMARY = {
    "ls": "List stored results: age, size, exit code, command.",
    "prune": "Remove old results, or the oldest beyond a size.",
    "clear": "Remove every stored result.",
}


def _parse(args: Sequence[str], table: Sequence[_Option]) -> dict[str, object]:
    """
    The values of the options in *args*, by ``dest``: False or True for a
    flag, None or a string for a single value, a list for the others.

    Raises:
        UsageError: an unknown or ambiguous option, a missing value, or an
            argument that is not an option.
    """
    values: dict[str, object] = {}
    for option in table:
        values[option.dest] = {_FLAG: False, _ONE: None}.get(option.kind, [])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            raise UsageError(
                f"unexpected argument {arg!r} (the command goes after '--')"
            )
        name, has_value, value = (
            arg.partition("=") if arg.startswith("--") else (arg, "", "")
        )
        option = _lookup(name, table)
        if option.kind == _FLAG:
            if has_value:
                raise UsageError(f"option {option.names[-1]} takes no value")
            values[option.dest] = True
            continue
        if has_value:
            given = [value]
        elif option.kind == _LIST:
            given = []
            while i < len(args) and not (args[i].startswith("-") and args[i] != "-"):
                given.append(args[i])
                i += 1
        elif i < len(args) and not (args[i].startswith("-") and args[i] != "-"):
            given = [args[i]]
            i += 1
        else:
            raise UsageError(
                f"option {option.names[-1]} needs a value ({option.metavar})"
            )
        if option.kind == _ONE:
            values[option.dest] = given[0]
        else:
            values[option.dest].extend(given)  # type: ignore[attr-defined]
    return values


def _lookup(name: str, table: Sequence[_Option]) -> _Option:
    for option in table:
        if name in option.names:
            return option
    # Unambiguous prefixes of long options work, as with argparse.
    matches = [
        o
        for o in table
        for n in o.names
        if name.startswith("--") and len(name) > 2 and n.startswith(name)
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(n for o in matches for n in o.names if n.startswith(name))
        raise UsageError(f"ambiguous option {name} (could be {names})")
    raise UsageError(f"unknown option {name!r} (see '{PROG} --help')")


def parse_duration(text: str) -> int:
    """
    Nanoseconds in *text*: ``90s``, ``10m``, ``2h``, ``1d``, ``1w``,
    combinations such as ``1h30m``, decimals such as ``1.5h``; a bare number
    is seconds.

    Raises:
        UsageError: *text* is not such a duration.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0.0
    number = ""
    valid = bool(text)
    for char in text.strip().lower():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            try:
                total += float(number) * units[char]
            except ValueError:
                valid = False
                break
            number = ""
        else:
            valid = False
            break
    if valid and number:
        try:
            total += float(number)
        except ValueError:
            valid = False
    if not valid:
        raise UsageError(
            f"invalid duration {text!r} (use e.g. 90s, 10m, 2h, 1d or 1h30m)"
        )
    return int(total * 1_000_000_000)


def parse_size(text: str) -> int:
    """
    Bytes in *text*: a number, optionally with K, M, G or T (powers of
    1024), followed or not by ``B`` or ``iB``: ``500M``, ``1.5G``, ``200KiB``.

    Raises:
        UsageError: *text* is not such a size.
    """
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    lowered = text.strip().lower()
    for suffix in ("ib", "b"):
        if lowered.endswith(suffix) and lowered[: -len(suffix)][-1:].isalpha():
            lowered = lowered[: -len(suffix)]
            break
    else:
        if lowered.endswith("b"):
            lowered = lowered[:-1]
    unit = lowered[-1:] if lowered[-1:].isalpha() else ""
    try:
        if unit not in units:
            raise ValueError
        size = float(lowered[: len(lowered) - len(unit)]) * units[unit]
        if size < 0:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"invalid size {text!r} (use e.g. 500M, 2G or 1048576)"
        ) from None
    return int(size)


# ---------------------------------------------------------------------------
# Help


def _help() -> str:
    return f"""\
usage: {PROG} [OPTIONS] -- CMD [ARGS...]
       {PROG} cache {{ls,prune,clear}} [OPTIONS]

Run CMD, or, if it ran before with the same command line and nothing it
depends on changed, replay its stored stdout, stderr and exit code without
running it. On a first run the output streams live as it is stored.

options:
{_describe(_COMMAND_OPTIONS)}

cache management:
{_describe_cache()}
  Each takes --stamp-directory DIR and --all; see '{PROG} cache --help'.

exit status:
  The command's own, whether it ran or was replayed; 127 if it was not
  found, 126 if it could not be executed, 128+N if it or {PROG} was ended by
  signal N (nothing is stored then); 1 without '--'; 2 for bad options.

environment:
  JOBSTAMPS_CACHE_DIR          where stamps are kept (--stamp-directory wins)
  JOBSTAMPS_DISABLED           always run; keep existing stamps
  JOBSTAMPS_ALWAYS_USE_HASHES  compare dependencies by content, as --use-hashes
  JOBSTAMPS_DEBUG              log every hit and miss with its reason
  JOBSTAMPS_STORE              a remote store shared between machines, as --store
  JOBSTAMPS_SECRET             the key that signs the remote store's entries
  JOBSTAMPS_ROOT               the project root shared stamps name files from

examples:
  {PROG} --dependencies src/*.c -- make -j8
  {PROG} --dependencies setup.py --output-files dist/app.whl -- ./build.sh
  {PROG} --use-hashes --dependencies requirements.in -- pip-compile
  {PROG} --ttl 1h --env GITHUB_REF -- gh pr list --json number
  git diff | {PROG} --stdin -- ./summarise
  {PROG} --why --dependencies a.c -- cc -c a.c
  {PROG} cache ls
  {PROG} cache prune --older-than 7d --max-size 500M
"""


def _cache_help() -> str:
    parts = [
        f"usage: {PROG} cache {{ls,prune,clear}} [OPTIONS]\n\nManage the stored results of commands.\n"
    ]
    for action, table in _CACHE_OPTIONS.items():
        parts.append(
            f"\n{PROG} cache {action}: {_CACHE_SUMMARY[action]}\n{_describe(table)}\n"
        )
    return "".join(parts)


def _describe(table: Sequence[_Option]) -> str:
    import textwrap

    lines = []
    for option in table:
        usage = option.usage()
        text = textwrap.wrap(option.help, 50, break_on_hyphens=False)
        if len(usage) > 24:
            lines.append(f"  {usage}")
            lines.extend(f"  {'':24}  {line}" for line in text)
        else:
            lines.append(f"  {usage:24}  {text[0]}")
            lines.extend(f"  {'':24}  {line}" for line in text[1:])
    return "\n".join(lines)


def _describe_cache() -> str:
    return "\n".join(
        f"  {PROG} cache {action:6}  {summary}"
        for action, summary in _CACHE_SUMMARY.items()
    )


# ---------------------------------------------------------------------------
# The command


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``jobstamp`` with *argv* (``argv[0]`` is the program's name; default
    ``sys.argv``) and return its exit status.

    Everything is written through ``sys.stdout`` and ``sys.stderr`` as they
    are when called, so a caller that replaces them captures the output.
    """
    args = list(argv or sys.argv)[1:]
    try:
        if args and args[0] == "cache":
            from ._cache_cli import cache_main

            return cache_main(args[1:])
        return _command_main(args)
    except UsageError as e:
        _error(f"error: {e}")
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 128 + 2


def _command_main(args: list[str]) -> int:
    if "--" not in args:
        if "-h" in args or "--help" in args:
            _say(_help())
            return 0
        if "--version" in args:
            return _version()
        _error(
            f"must specify the command after '--', as in: {PROG} [OPTIONS] -- CMD [ARGS...]"
        )
        return 1
    split = args.index("--")
    options = _parse(args[:split], _COMMAND_OPTIONS)
    command = tuple(args[split + 1 :])
    if options["help"]:
        _say(_help())
        return 0
    if options["version"]:
        return _version()
    if not command:
        raise UsageError("no command after '--'")
    ttl = options["ttl"]
    max_age_ns = None if ttl is None else parse_duration(ttl)  # type: ignore[arg-type]
    names: list[str] = options["env"]  # type: ignore[assignment]
    for name in names:
        if not name or "=" in name:
            raise UsageError(f"--env takes the name of a variable, not {name!r}")
    environment = tuple(
        sorted(
            {(name, os.environ.get(name)) for name in names}, key=lambda item: item[0]
        )
    )
    cwd = os.getcwd() if options["cwd"] else None
    stdin = _read_stdin() if options["stdin"] else None
    method = None
    if options["use_hashes"]:
        from ._methods import HashMethod

        method = HashMethod
    stamp_directory: str | None = options["stamp_directory"]  # type: ignore[assignment]
    job = Job(
        run_command,
        method=method,
        cache_dir=stamp_directory,
        version=RESULT_VERSION,
        store=options["store"],
        restore_outputs=bool(options["restore_outputs"]),
    )
    call: tuple[object, ...] = (
        (command, cwd, environment, stdin),
        {},
        options["dependencies"],
        options["output_files"],
    )
    try:
        if options["dry_run"]:
            return _dry_run(job, call, max_age_ns, bool(options["force"]))
        return _call(
            job,
            call,
            max_age_ns,
            bool(options["force"]),
            bool(options["discard_failures"]),
        )
    except CommandNotStarted as e:
        _error(str(e))
        return e.status
    except (CommandKilled, Interrupted) as e:
        return 128 + e.signum
    except RemoteStoreError as e:  # no secret, unknown scheme, missing driver
        _error(f"error: {e}")
        return USAGE_ERROR
    except OSError as e:  # the stamp directory, a dependency that is a folder
        where = (
            f": {e.filename}"
            if e.filename and str(e.filename) not in (e.strerror or "")
            else ""
        )
        _error(f"error: {e.strerror or e}{where}")
        return USAGE_ERROR


def _call(
    job: Job,
    call: tuple[object, ...],
    max_age_ns: int | None,
    force: bool,
    discard_failures: bool,
) -> int:
    import warnings

    with warnings.catch_warnings():
        # A stamp that can't be written is worth one line, not a traceback
        # position in jobstamps' source.
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        result = job.call(
            *call,  # type: ignore[arg-type]
            max_age_ns=max_age_ns,
            force=force,
            keep=_succeeded if discard_failures else None,
        )
    for i, shown in enumerate(_shown):
        if shown is result:
            del _shown[i]
            return result["code"]  # type: ignore[index, no-any-return]
    return _replay(result)  # type: ignore[arg-type]


def _dry_run(
    job: Job, call: tuple[object, ...], max_age_ns: int | None, force: bool
) -> int:
    args, kwargs, dependencies, outputs = call
    if force:
        _say("would run: --force\n")
        return 0
    reason = job.why(args, kwargs, dependencies, outputs, max_age_ns=max_age_ns)  # type: ignore[arg-type]
    if reason is None:
        _say(f"up to date: would replay {job.stamp_path(args, kwargs)}\n")  # type: ignore[arg-type]
    else:
        path, why = reason
        _say(f"would run: {why}: {path}\n")
    return 0


def _succeeded(result: object) -> bool:
    return result["code"] == 0  # type: ignore[index, no-any-return]


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    _error(f"warning: {message}")


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None:
        return b""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer.read()  # type: ignore[no-any-return]
    return stream.read().encode("utf-8", "surrogateescape")


def _version() -> int:
    from importlib.metadata import version

    _say(f"{PROG} (jobstamps) {version('jobstamps')}\n")
    return 0
