"""
``jobstamp``: run a command once, replay its output afterwards; ``main``.

``jobstamp [OPTIONS] -- CMD ARGS...`` is a client of :class:`._core.Job`:
the cached function is :func:`._command.run_command`, keyed on the command
line (and, when asked, the working directory, some environment variables and
standard input). On a miss the command's output streams to the terminal while
it is captured; on a hit the stored stdout, stderr and exit code are
replayed. ``jobstamp cache ...`` is handed to :mod:`._cache_cli`.

A cached run is meant to cost little more than starting Python, so this
module and those it imports load only what a hit needs.
"""

from __future__ import annotations

import os
import sys

from ._command import (
    RESULT_VERSION,
    CommandKilled,
    CommandNotStarted,
    Interrupted,
    read_stdin,
    replay,
    run_command,
    shown_live,
)
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
from .exceptions import RemoteStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


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
        error(f"error: {e}")
        return USAGE_ERROR
    except KeyboardInterrupt:
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
    stdin = read_stdin() if options["stdin"] else None
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
    )
    call: tuple[object, ...] = (
        (command, cwd, env, stdin),
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
        error(str(e))
        return e.status
    except (CommandKilled, Interrupted) as e:
        return 128 + e.signum
    except RemoteStoreError as e:  # no secret, unknown scheme, missing driver
        error(f"error: {e}")
        return USAGE_ERROR
    except OSError as e:  # the stamp directory, a dependency that is a folder
        where = (
            f": {e.filename}"
            if e.filename and str(e.filename) not in (e.strerror or "")
            else ""
        )
        error(f"error: {e.strerror or e}{where}")
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
    if shown_live(result):
        return result["code"]  # type: ignore[index, no-any-return]
    return replay(result)  # type: ignore[arg-type]


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
        path, why = reason
        say(f"would run: {why}: {path}\n")
    return 0


def _environment(names: list[str]) -> tuple[tuple[str, str | None], ...]:
    if not names:
        return ()
    from ._controls import env_names, environment

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


def _succeeded(result: object) -> bool:
    return result["code"] == 0  # type: ignore[index, no-any-return]


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    error(f"warning: {message}")


def _version() -> int:
    from importlib.metadata import version

    say(f"{PROG} (jobstamps) {version('jobstamps')}\n")
    return 0
