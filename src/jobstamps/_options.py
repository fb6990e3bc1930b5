"""
The ``jobstamp`` command line: its options and their parsing, durations and
sizes, help texts, and the one-line messages it prints.

The parser is a small table-driven one rather than :mod:`argparse`: building
an argparse parser for these options and parsing costs at least 4.0 ms
(median 6.5 ms; fresh processes, its import included, even with a fixed help
width that spares the import of :mod:`shutil`) against 0.02 ms for this one,
where a cached ``jobstamp -- true`` is allowed 1.5x an empty console script
of about 21 ms (scenario 7 of ``benchmarks/run.py``). Unique prefixes of long
options work, as they did with argparse in jobstamps 0.0.20.

This module knows nothing of stamps, jobs or running commands.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

PROG = "jobstamp"

# The exit status of jobstamp's own errors (bad options, unusable stamp
# directory), as argparse has it.
USAGE_ERROR = 2


class UsageError(Exception):
    """
    A bad option or value: one line on stderr, exit status 2.
    """


def say(text: str, stream: TextIO | None = None) -> None:
    """
    Write *text* to *stream* (default: ``sys.stdout`` as it is now).
    """
    stream = sys.stdout if stream is None else stream
    if stream is not None:
        stream.write(text)
        stream.flush()


def error(message: str) -> None:
    """
    ``jobstamp: <message>`` on stderr.
    """
    say(f"{PROG}: {message}\n", sys.stderr)


FLAG = "flag"  # --force
ONE = "one"  # --ttl 10m (given again, the last one counts)
EACH = "each"  # --env A --env B (every one counts)
LIST = "list"  # --dependencies a b c (every value up to the next option)


class Option:
    """
    One option: its names, its kind (FLAG, ONE, EACH or LIST), and its help.
    """

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
            FLAG: "",
            ONE: f" {self.metavar}",
            EACH: f" {self.metavar}",
            LIST: f" {self.metavar}...",
        }
        return ", ".join(self.names) + value[self.kind]


STAMP_DIRECTORY = Option(
    ("--stamp-directory",),
    ONE,
    "Keep stamps in DIR instead of $JOBSTAMPS_CACHE_DIR or the user's cache "
    "directory (~/.cache/jobstamps).",
    "DIR",
)
HELP = Option(("-h", "--help"), FLAG, "Show this help and exit.")

COMMAND_OPTIONS = (
    Option(
        ("--dependencies",),
        LIST,
        "Files the command reads: if one changed since the command last ran "
        "(or is added to or removed from the list), it runs again. May be "
        "given more than once.",
        "PATH",
    ),
    Option(
        ("--output-files",),
        LIST,
        "Files the command writes: if one is missing, it runs again. May be "
        "given more than once.",
        "PATH",
    ),
    STAMP_DIRECTORY,
    Option(
        ("--use-hashes",),
        FLAG,
        "Compare dependencies by content (SHA-256) instead of modification "
        "time: slower, but a file copied, checked out or touched with the "
        "same content is not a change.",
    ),
    Option(
        ("--store",),
        ONE,
        "Share stamps through the remote store at URL (redis://host:6379/0, "
        "s3://bucket/prefix, any fsspec URL), read when the local stamp "
        "misses and written after a run; default $JOBSTAMPS_STORE. Entries are "
        "signed with $JOBSTAMPS_SECRET. Only --use-hashes stamps are shared.",
        "URL",
    ),
    Option(
        ("--no-lease",),
        FLAG,
        "With --store, run at once on a miss, neither waiting for other "
        "machines nor holding them up. By default, machines that miss the "
        "same result at the same time wait for the one running it (a Redis "
        "store, --use-hashes results; at most $JOBSTAMPS_LEASE_WAIT seconds).",
    ),
    Option(
        ("--restore-outputs",),
        FLAG,
        "Keep the contents of the --output-files with the stamp, so that a "
        "hit whose outputs are missing writes them back instead of running.",
    ),
    Option(
        ("--cwd",),
        FLAG,
        "Make the working directory part of the key: the same command run "
        "from another directory runs again.",
    ),
    Option(
        ("--env",),
        EACH,
        "Make the value of environment variable NAME part of the key (unset "
        "and empty differ). Repeat for more variables.",
        "NAME",
    ),
    Option(
        ("--stdin",),
        FLAG,
        "Read standard input to its end, make its SHA-256 part of the key, "
        "and feed it to the command (spooled to a file, not held in memory). "
        "Without it the command inherits standard input, which is not part "
        "of the key.",
    ),
    Option(
        ("--ttl",),
        ONE,
        "A stored result older than DURATION (counted from when its run "
        "started) is stale: 90s, 10m, 2h, 1d, 1w, or combined, 1h30m; a bare "
        "number is seconds. More than zero.",
        "DURATION",
    ),
    Option(
        ("--discard-failures",),
        FLAG,
        "Do not store the result of a run that exits non-zero, so a failing "
        "command runs every time.",
    ),
    Option(
        ("--force",),
        FLAG,
        "Run the command and store its result even if the stored one is fresh.",
    ),
    Option(
        ("--dry-run", "--why"),
        FLAG,
        "Do not run anything: print whether the command would run and why "
        "(the changed dependency, the missing output, or where the result "
        "would be stored when there is none yet), then exit 0.",
    ),
    HELP,
    Option(("--version",), FLAG, "Show jobstamps' version and exit."),
)

# One line per cache subcommand, for the main help.
CACHE_SUMMARY = {
    "ls": "List stored results, one line each (--json for scripts).",
    "prune": "Remove old results, or the oldest beyond a size.",
    "clear": "Remove every stored result.",
    "stats": "Hits, misses, hit rate and time saved, per command and function.",
}


def parse(args: Sequence[str], table: Sequence[Option]) -> dict[str, object]:
    """
    The values of the options in *args*, by ``dest``: False or True for a
    flag, None or a string for a single value, a list for the others.

    Raises:
        UsageError: an unknown or ambiguous option, a missing value, or an
            argument that is not an option.
    """
    values: dict[str, object] = {}
    for option in table:
        values[option.dest] = {FLAG: False, ONE: None}.get(option.kind, [])
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
        if option.kind == FLAG:
            if has_value:
                raise UsageError(f"option {option.names[-1]} takes no value")
            values[option.dest] = True
            continue
        if has_value:
            given = [value]
        elif option.kind == LIST:
            given = []
            while i < len(args) and not (args[i].startswith("-") and args[i] != "-"):
                given.append(args[i])
                i += 1
        elif i < len(args) and _is_value(args[i]):
            given = [args[i]]
            i += 1
        else:
            raise UsageError(
                f"option {option.names[-1]} needs a value ({option.metavar})"
            )
        if option.kind == ONE:
            values[option.dest] = given[0]
        else:
            values[option.dest].extend(given)  # type: ignore[attr-defined]
    return values


def _is_value(arg: str) -> bool:
    # A negative number is a value, as with argparse: `--ttl -5` is a
    # duration (refused with its reason), not a missing one.
    return not arg.startswith("-") or arg == "-" or arg[1:2].isdigit()


def _lookup(name: str, table: Sequence[Option]) -> Option:
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
    is seconds. A leading ``-`` makes it negative, for the caller to refuse
    with its reason.

    Raises:
        UsageError: *text* is not such a duration.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0.0
    number = ""
    stripped = text.strip().lower()
    sign = -1 if stripped[:1] == "-" else 1
    stripped = stripped[1:] if sign < 0 else stripped
    valid = bool(stripped)
    for char in stripped:
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
    return sign * int(total * 1_000_000_000)


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


def command_help() -> str:
    return f"""\
usage: {PROG} [OPTIONS] -- CMD [ARGS...]
       {PROG} cache {{ls,prune,clear,stats}} [OPTIONS]

Run CMD, or, if it ran before with the same command line and nothing it
depends on changed, replay its stored stdout, stderr and exit code without
running it. On a first run the output streams live as it is stored.

options:
{describe(COMMAND_OPTIONS)}

cache management:
{_describe_cache()}
  Each takes --stamp-directory DIR; see '{PROG} cache --help'.

exit status:
  The command's own, whether it ran or was replayed; 127 if it was not
  found, 126 if it could not be executed, 128+N if it was ended by signal N
  (141 when its reader went away; nothing is stored then); 1 without '--';
  2 for bad options.

signals:
  With standard input not a terminal, the command runs in a process group
  of its own, and SIGTERM, SIGHUP and SIGINT sent to {PROG} go to all of it.
  With a terminal, it stays in the terminal's foreground group: Ctrl-C and
  Ctrl-Z reach it as without {PROG}, and SIGTERM or SIGHUP sent to {PROG}
  alone reach the command, not its children.

environment:
  JOBSTAMPS_CACHE_DIR          where stamps are kept (--stamp-directory wins)
  JOBSTAMPS_DISABLED           always run; keep existing stamps (flags are off
                               when empty, 0, false, no or off)
  JOBSTAMPS_ALWAYS_USE_HASHES  compare dependencies by content, as --use-hashes
  JOBSTAMPS_DEBUG              log every hit and miss with its reason
  JOBSTAMPS_STORE              a remote store shared between machines, as --store
  JOBSTAMPS_SECRET             the key that signs the remote store's entries
  JOBSTAMPS_ROOT               the project root shared stamps name files from
  JOBSTAMPS_LEASE_WAIT         most seconds to wait for another machine (300)
  JOBSTAMPS_LEASE_TTL          seconds a lease outlives a machine that died (30)

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


def describe(table: Sequence[Option]) -> str:
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
        for action, summary in CACHE_SUMMARY.items()
    )
