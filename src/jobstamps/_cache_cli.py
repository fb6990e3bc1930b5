"""
``jobstamp cache ls|prune|clear|stats``: list, prune and clear stored
results, and show the statistics, with the options of those subcommands.

Stamp files are found and read through :mod:`._store`, ages are counted as
:mod:`._freshness` counts them for ``--ttl``; pruning and clearing are
:mod:`._maintenance`'s (shared with ``jobstamps.prune()``), statistics
:mod:`._cache_stats`'s. Imported only for these commands, so it may use
attrs; a cached run of a command never loads it, and it never imports
:mod:`._cli`.
"""

from __future__ import annotations

import os

import attrs

from ._cache_stats import STATS_OPTIONS, stats_main
from ._command import run_command
from ._options import (
    CACHE_SUMMARY,
    FLAG,
    HELP,
    ONE,
    PROG,
    STAMP_DIRECTORY,
    Option,
    UsageError,
    describe,
    error,
    parse,
    parse_duration,
    parse_size,
    say,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._maintenance import Pruned


_ALL = Option(
    ("--all",),
    FLAG,
    "Every stamp in the directory, including those of Python functions "
    "cached with jobstamps, not only the commands'.",
)
_OPTIONS = {
    "ls": (STAMP_DIRECTORY, _ALL, HELP),
    "prune": (
        Option(
            ("--older-than",),
            ONE,
            "Remove entries older than DURATION (as for --ttl).",
            "DURATION",
        ),
        Option(
            ("--max-size",),
            ONE,
            "Then remove the oldest entries until the rest take at most SIZE: "
            "bytes, or with K, M, G or T (powers of 1024), say 500M.",
            "SIZE",
        ),
        STAMP_DIRECTORY,
        _ALL,
        HELP,
    ),
    "clear": (STAMP_DIRECTORY, _ALL, HELP),
    "stats": STATS_OPTIONS,
}


@attrs.frozen
class _Entry:
    """
    One stored result, as ``ls`` shows it and ``prune`` weighs it.
    """

    path: str
    size: int
    mtime_ns: int
    # Counted from when its run started, as for --ttl.
    age_ns: int
    command: str
    code: str


def cache_main(args: list[str]) -> int:
    """
    ``jobstamp cache ls|prune|clear``; the exit status.
    """
    if not args or args[0] in ("-h", "--help"):
        if not args:
            raise UsageError(
                f"'{PROG} cache' needs ls, prune, clear or stats (see '{PROG} cache --help')"
            )
        say(_help())
        return 0
    action = args[0]
    table = _OPTIONS.get(action)
    if table is None:
        raise UsageError(
            f"unknown cache command {action!r} (use ls, prune, clear or stats)"
        )
    options = parse(args[1:], table)
    if options["help"]:
        say(_help())
        return 0
    from . import _config

    directory: str = options["stamp_directory"] or _config.default_cache_dir()  # type: ignore[assignment]
    root = os.path.abspath(directory)
    if action == "stats":
        return stats_main(root, options)
    scope = None if options["all"] else _function()
    if action == "prune":
        older_than = options["older_than"]
        max_size = options["max_size"]
        if older_than is None and max_size is None:
            raise UsageError(
                "cache prune needs --older-than DURATION and/or --max-size SIZE"
            )
        max_age = None if older_than is None else parse_duration(older_than)  # type: ignore[arg-type]
        if max_age is not None and max_age < 0:
            raise UsageError(
                f"invalid duration {older_than!r} for --older-than: it can't be negative"
            )
        limit = None if max_size is None else parse_size(max_size)  # type: ignore[arg-type]
    if action == "ls":
        return _ls(root, _entries(root, scope, read=True, describe=True))
    from . import _maintenance
    from .exceptions import CacheDirError

    try:
        if action == "clear":
            return _report(root, _maintenance.clear_stamps(root, scope))
        return _report(root, _maintenance.prune_stamps(root, scope, max_age, limit))
    except CacheDirError as e:  # not a jobstamps cache: nothing removed
        error(e.strerror or str(e))
        return 1


def _help() -> str:
    parts = [
        f"usage: {PROG} cache {{ls,prune,clear,stats}} [OPTIONS]\n\nManage the stored results of commands.\n"
    ]
    for action, table in _OPTIONS.items():
        parts.append(
            f"\n{PROG} cache {action}: {CACHE_SUMMARY[action]}\n{describe(table)}\n"
        )
    return "".join(parts)


def _function() -> str:
    from ._key import function_name

    return function_name(run_command)


def _entries(
    root: str, function: str | None, read: bool, describe: bool
) -> list[_Entry]:
    import time

    from ._freshness import born_ns
    from ._stampfile import StampFormatError
    from ._store import function_folder, is_stamp_file, read_stamp, stamp_files

    ours = os.path.join(root, function_folder(_function())) + os.sep
    now = time.time_ns()
    entries = []
    for path, stat in stamp_files(root, function):
        if not is_stamp_file(path):
            continue  # not ours: never list or delete it
        born = stat.st_mtime_ns
        command, code = "?", "?"
        if read:
            # Ages count from when the run started, as for --ttl.
            try:
                stamp = read_stamp(path)
            except (OSError, StampFormatError):
                command = "(unreadable stamp)"
            else:
                born = born_ns(stamp, born)
                if not describe:
                    pass
                elif path.startswith(ours):
                    command, code = _describe_result(stamp.result)
                else:
                    folder = os.path.relpath(path, root).split(os.sep)[0]
                    command = f"(function {folder.rpartition('-')[0]})"
                    code = "-"
        entries.append(
            _Entry(path, stat.st_size, stat.st_mtime_ns, now - born, command, code)
        )
    return entries


def _describe_result(pickled: bytes | memoryview) -> tuple[str, str]:
    import io
    import pickle
    import shlex

    class Plain(pickle.Unpickler):
        # A command's result is plain data; refuse anything that would import
        # or call code: listing stamps must never run code from one.
        def find_class(self, module: str, name: str) -> type:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    try:
        result = Plain(io.BytesIO(pickled)).load()
        return shlex.join(result["command"]), str(result["code"])
    except Exception:
        return "(unreadable result)", "?"


def _ls(root: str, entries: list[_Entry]) -> int:
    entries.sort(key=lambda e: e.age_ns)
    lines = []
    if entries:
        lines.append(f"{'AGE':>6}  {'SIZE':>6}  {'EXIT':>4}  COMMAND")
        lines.extend(
            f"{_age(e.age_ns):>6}  {_size(e.size):>6}  {e.code:>4}  {e.command}"
            for e in entries
        )
    total = sum(e.size for e in entries)
    lines.append(f"{_count(len(entries))}, {_size(total)} in {root}")
    say("\n".join(lines) + "\n")
    return 0


def _report(root: str, pruned: Pruned) -> int:
    for path, reason in pruned.failed:
        error(f"could not remove {path}: {reason}")
    # Output contents kept for --restore-outputs that no stamp names any more.
    kept = (
        f", and {pruned.outputs} kept output file(s) ({_size(pruned.output_bytes)})"
        if pruned.outputs
        else ""
    )
    say(
        f"removed {_count(pruned.removed)} ({_size(pruned.removed_bytes)}){kept}; "
        f"{_count(pruned.left)} ({_size(pruned.left_bytes)}) left in {root}\n"
    )
    return 1 if pruned.failed else 0


def _count(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _age(ns: int) -> str:
    seconds = max(ns, 0) // 1_000_000_000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n}B"
    value = n / 1024
    unit = "K"
    for bigger in "MGT":
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
