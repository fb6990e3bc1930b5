"""
``jobstamp cache ls|prune|clear|stats``: list, prune and clear stored
results, and show the statistics, with the options of those subcommands.

Stamp files are found and read through :mod:`._store`, ages are counted as
:mod:`._freshness` counts them for ``--ttl``; pruning and clearing are
:mod:`._maintenance`'s (shared with ``jobstamps.prune()``), statistics
:mod:`._cache_stats`'s. Only the head of a stamp is read (its meta, with
what describes the call): never its result, never its output, so listing is
as fast for large stamps as for small ones and runs no code from them.
Imported only for these commands, so it may use attrs; a cached run of a
command never loads it, and it never imports :mod:`._cli`.
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
_JSON = Option(
    ("--json",),
    FLAG,
    "Print the entries as a JSON array, one object per entry, for scripts.",
)
_OPTIONS = {
    "ls": (STAMP_DIRECTORY, _ALL, _JSON, HELP),
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
    # How long its run took; None when the stamp could not be read.
    duration_ns: int | None = None
    # What describes a command's call (see _cli); None for functions.
    about: dict[str, object] | None = None
    function: str | None = None


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

    given: str | None = options["stamp_directory"]  # type: ignore[assignment]
    if given is not None and not os.path.isdir(given):
        what = "is not a directory" if os.path.exists(given) else "does not exist"
        raise UsageError(f"the stamp directory {given!r} {what}")
    directory = given or _config.default_cache_dir()
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
        entries = _entries(root, scope, read=True, describe=True)
        return _ls(root, entries, bool(options["json"]))
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
    from ._stampfile import StampFormatError, is_stamp, read_head
    from ._store import function_folder, stamp_files

    ours = os.path.join(root, function_folder(_function())) + os.sep
    now = time.time_ns()
    entries = []
    for path, stat in stamp_files(root, function):
        born = stat.st_mtime_ns
        command, code, duration, about, name = "?", "?", None, None, None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                head = os.pread(fd, 4096, 0)
                if not is_stamp(head):
                    continue  # not ours: never list or delete it
                if read:
                    stamp = read_head(fd, head)
            finally:
                os.close(fd)
        except FileNotFoundError:
            continue
        except (OSError, StampFormatError):
            command = "(unreadable stamp)"
        else:
            if read:
                # Ages count from when the run started, as for --ttl.
                born = born_ns(stamp, born)
                duration = stamp.duration_ns
                if not describe:
                    pass
                elif path.startswith(ours) and isinstance(stamp.about, dict):
                    about = stamp.about
                    command, code = _describe_command(about)
                else:
                    folder = os.path.relpath(path, root).split(os.sep)[0]
                    name = folder.rpartition("-")[0]
                    command, code = f"(function {name})", "-"
        entries.append(
            _Entry(
                path,
                stat.st_size,
                stat.st_mtime_ns,
                now - born,
                command,
                code,
                duration,
                about,
                name,
            )
        )
    return entries


def _describe_command(about: dict[str, object]) -> tuple[str, str]:
    """
    The command line of a command's stamp, with what tells it apart from
    other runs of it (the variables of --env, the directory of --cwd, a
    short digest of --stdin, the --ttl), on one line; its exit code.
    """
    import shlex

    try:
        line = shlex.join(about["command"])  # type: ignore[arg-type]
        details = [
            f"{name}={_quote(value)}" if value is not None else f"{name} unset"
            for name, value in about.get("env") or ()  # type: ignore[attr-defined]
        ]
        if about.get("cwd") is not None:
            details.append(f"cwd={_quote(about['cwd'])}")  # type: ignore[arg-type]
        if about.get("stdin") is not None:
            details.append(f"stdin={_short_digest(about['stdin'])}")  # type: ignore[arg-type]
        if about.get("ttl_ns") is not None:
            details.append(f"ttl={_duration(about['ttl_ns'])}")  # type: ignore[arg-type]
        if details:
            line += f"  [{' '.join(details)}]"
        return _one_line(line), str(about.get("code", "?"))
    except (KeyError, TypeError, ValueError):
        return "(unreadable description)", "?"


def _quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def _one_line(text: str) -> str:
    # Whatever a value holds, an entry stays one line.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short_digest(digest: str) -> str:
    return digest.rpartition(":")[2][:12]


def _ls(root: str, entries: list[_Entry], as_json: bool) -> int:
    entries.sort(key=lambda e: e.age_ns)
    if as_json:
        say(_json(entries) + "\n")
        return 0
    lines = []
    if entries:
        lines.append(f"{'AGE':>6}  {'TOOK':>6}  {'SIZE':>6}  {'EXIT':>4}  COMMAND")
        lines.extend(
            f"{_age(e.age_ns):>6}  {_took(e.duration_ns):>6}  {_size(e.size):>6}  "
            f"{e.code:>4}  {e.command}"
            for e in entries
        )
    total = sum(e.size for e in entries)
    lines.append(f"{_count(len(entries))}, {_size(total)} in {root}")
    say("\n".join(lines) + "\n")
    return 0


def _json(entries: list[_Entry]) -> str:
    import json

    def seconds(ns: object) -> float | None:
        return None if not isinstance(ns, int) else ns / 1e9

    records = []
    for e in entries:
        about = e.about or {}
        env = about.get("env") or ()
        record: dict[str, object] = {
            "path": e.path,
            "size": e.size,
            "age_seconds": seconds(max(e.age_ns, 0)),
            "duration_seconds": seconds(e.duration_ns),
            "command": about.get("command"),
            "exit": about.get("code"),
            "cwd": about.get("cwd"),
            "env": {name: value for name, value in env},  # type: ignore[attr-defined]
            "stdin": about.get("stdin"),
            "ttl_seconds": seconds(about.get("ttl_ns")),
            "function": e.function,
        }
        if e.duration_ns is None:
            record["error"] = e.command
        records.append(record)
    return json.dumps(records, indent=2)


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


def _took(ns: int | None) -> str:
    if ns is None:
        return "?"
    seconds = ns / 1e9
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    return _duration(ns)


def _duration(ns: int) -> str:
    # 1h30m, 2d, 45s: as --ttl takes them.
    seconds = ns // 1_000_000_000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2]) or "0s"


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
