"""
``jobstamp``: run a command once, replay its output afterwards; ``main``.

``jobstamp [OPTIONS] -- CMD ARGS...`` is a client of :class:`._core.Job`:
the cached function is :func:`._command.run_command`, keyed on the command
line (and, when asked, the working directory, some environment variables and
the digest of standard input). On a miss the command's output streams to
the terminal while it is spooled into its stamp; on a hit the stored stdout,
stderr and exit code are checked, then replayed (:mod:`._streams`).
``jobstamp cache ...`` is handed to :mod:`._cache_cli`.

A cached run is meant to cost little more than starting Python, so this
module and those it imports load only what a hit needs.
"""

from __future__ import annotations

import os
import sys

from . import _config, _log
from ._command import RESULT_VERSION, CommandNotStarted, Context, run_command
from ._core import Job
from ._options import (
    COMMAND_OPTIONS,
    PROG,
    USAGE_ERROR,
    UsageError,
    command_help,
    error,
    parse,
    parse_duration,
    say,
)
from ._stampfile import Attached
from .exceptions import RemoteStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._stampfile import Spool

# The exit status of a shell pipeline member whose reader went away.
BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``jobstamp`` with *argv* (``argv[0]`` is the program's name; default
    ``sys.argv``) and return its exit status.

    Everything is written through ``sys.stdout`` and ``sys.stderr`` as they
    are when called, so a caller that replaces them captures the output.
    """
    argv = list(argv or sys.argv)[1:]
    try:
        if argv and argv[0] == "cache":
            from ._cache_cli import cache_main

            return cache_main(argv[1:])
        return _command_main(argv)
    except UsageError as e:
        error(f"error: {e}")
        return USAGE_ERROR
    except KeyboardInterrupt:  # before or after the command ran
        return 128 + 2


def _command_main(args: list[str]) -> int:
    if "--" not in args:
        if "-h" in args or "--help" in args:
            say(command_help())
            return 0
        if "--version" in args:
            return _version()
        error(
            f"must specify the command after '--', as in: {PROG} [OPTIONS] -- CMD [ARGS...]"
        )
        return 1
    split = args.index("--")
    options = parse(args[:split], COMMAND_OPTIONS)
    command = tuple(args[split + 1 :])
    if options["help"]:
        say(command_help())
        return 0
    if options["version"]:
        return _version()
    if not command:
        raise UsageError("no command after '--'")
    ttl: str | None = options["ttl"]  # type: ignore[assignment]
    max_age_ns = None if ttl is None else _ttl(ttl)
    env = _environment(options["env"])  # type: ignore[arg-type]
    cwd = os.getcwd() if options["cwd"] else None
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
        lease=not options["no_lease"],
        counted_as=("command", command[0]),
        ignore=("context",),
        describe=_describe,
    )
    stdin = digest = None
    try:
        if options["stdin"]:  # keyed by its digest, even for --why
            from ._stdin import spool_stdin

            stdin, digest = spool_stdin(_config.cache_dir(stamp_directory))
            digest = f"sha256:{digest}"
        about: dict[str, object] = {
            "command": list(command),
            "cwd": cwd,
            "env": [list(pair) for pair in env],
            "stdin": digest,
            "ttl_ns": max_age_ns,
        }
        context = Context(about, stdin, foreground=_interactive())
        keyed = (command, cwd, env, digest)
        kwargs = {"context": context}
        call = (keyed, kwargs, options["dependencies"], options["output_files"])
        if not _config.disabled():
            context.spool = lambda: _open_spool(job.stamp_path(keyed, kwargs))
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
        error(str(e))
        return e.status
    except RemoteStoreError as e:  # no secret, unknown scheme, missing driver
        error(f"error: {e}")
        return USAGE_ERROR
    except OSError as e:  # the stamp directory, a dependency that is a folder
        # The path, unless the message names it already (quoted, as
        # jobstamps' own messages do): a word of the message that happens
        # to hold it is no mention.
        where = (
            f": {e.filename}"
            if e.filename and repr(str(e.filename)) not in (e.strerror or "")
            else ""
        )
        error(f"error: {e.strerror or e}{where}")
        return USAGE_ERROR
    finally:
        if stdin is not None:
            os.close(stdin)


def _interactive() -> bool:
    # As `timeout --foreground` when standard input is a terminal.
    return os.isatty(0)


def _open_spool(path: str) -> Spool:
    from ._fs import AtomicFile
    from ._stampfile import Spool

    try:
        return Spool(AtomicFile(path, 0o600), path)
    except OSError as e:  # an unwritable folder: the core warns about it
        return Spool.failed(e, path)


def _describe(args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
    # How debug lines and warnings name a call: its command line.
    import shlex

    return shlex.join(args[0])  # type: ignore[arg-type]


def _call(
    job: Job,
    call: tuple[object, ...],
    max_age_ns: int | None,
    force: bool,
    discard_failures: bool,
) -> int:
    import warnings

    args, kwargs, dependencies, outputs = call
    context: Context = kwargs["context"]  # type: ignore[index]

    def keep(result: object) -> bool:
        if not context.complete:
            _log.debug("%s: not stored: its run was cut short", _describe(args, kwargs))  # type: ignore[arg-type]
            return False
        return not discard_failures or context.status == 0

    with warnings.catch_warnings():
        # A stamp that can't be written is worth one line, not a traceback
        # position in jobstamps' source.
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        for _ in range(2):
            result = job.call(
                args,  # type: ignore[arg-type]
                kwargs,  # type: ignore[arg-type]
                dependencies,  # type: ignore[arg-type]
                outputs,  # type: ignore[arg-type]
                max_age_ns=max_age_ns,
                force=force,
                keep=keep,
            )
            try:
                if result is context.result:  # it ran: shown live already
                    return context.status
                return _replay(result, job.stamp_path(args, kwargs))  # type: ignore[arg-type]
            except _Corrupt as e:
                # A stamp whose output is damaged is no stamp: run again.
                _log.debug("ignoring the stamp %s: %s", e.path, e.reason)
                force = True
            finally:
                _discard(result)
    return context.status  # pragma: no cover - the forced run is live


class _Corrupt(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _replay(result: object, path: str) -> int:
    """
    Write a stored result's output out again, checked first; its exit code.
    """
    from ._streams import CorruptOutputError, replay, sinks

    assert isinstance(result, Attached) and result.payload is not None
    code: int = result.value["code"]  # type: ignore[index]
    try:
        whole = replay(result.payload, path, sinks())
    except CorruptOutputError as e:
        raise _Corrupt(path, str(e)) from None
    return code if whole else BROKEN_PIPE


def _discard(result: object) -> None:
    # The spool of a run whose stamp was not written (or a no-op).
    from ._stampfile import Spool

    payload = getattr(result, "payload", None)
    if isinstance(payload, Spool):
        payload.discard()


def _dry_run(
    job: Job, call: tuple[object, ...], max_age_ns: int | None, force: bool
) -> int:
    args, kwargs, dependencies, outputs = call
    if force:
        say("would run: --force\n")
        return 0
    reason = job.why(args, kwargs, dependencies, outputs, max_age_ns=max_age_ns)  # type: ignore[arg-type]
    if reason is None:
        say(f"up to date: would replay {job.stamp_path(args, kwargs)}\n")  # type: ignore[arg-type]
    else:
        say(f"would run: {_why(*reason)}\n")
    return 0


def _environment(names: list[str]) -> tuple[tuple[str, str | None], ...]:
    if not names:
        return ()
    from ._controls import env_names
    from ._key import environment

    try:
        return environment(env_names(names, "--env"))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _ttl(text: str) -> int:
    from ._controls import ttl_problem

    ns = parse_duration(text)
    problem = ttl_problem(ns)
    if problem is not None:
        raise UsageError(f"invalid duration {text!r} for --ttl: {problem}")
    return ns


# What --why says for a reason about the stamp itself: only then is the
# stamp's path worth showing.
_ABOUT_THE_STAMP = {
    "no stamp": "no stored result yet",
    "stamp expired": "the stored result is older than --ttl",
    "stamp unreadable": "the stored result can't be read",
}


def _why(path: str, reason: str) -> str:
    if path == "JOBSTAMPS_DISABLED":
        return f"{reason} ({path})"
    if reason in _ABOUT_THE_STAMP:
        return f"{_ABOUT_THE_STAMP[reason]}: {path}"
    if reason == "output not written by the last run":
        return f"output {path} was not written by the last run"
    return f"{reason}: {path}"


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    error(f"warning: {message}")


def _version() -> int:
    from importlib.metadata import version

    say(f"{PROG} (jobstamps) {version('jobstamps')}\n")
    return 0
