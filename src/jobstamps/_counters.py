"""
Hits, misses, runs and time saved, counted in the process and appended to
the cache directory's ``stats`` file now and then.

A hit must not write or lock anything, so counting is a list increment in
the process (:func:`tally`). The counts go to disk as one record per cache
directory per flush: at exit (``atexit``; in the children multiprocessing
forks, which leave through ``os._exit``, its finalizers), and every
:data:`FLUSH_INTERVAL` seconds in a long-lived process. A record is one line
appended with ``O_APPEND`` in a single ``os.write``, so writers never wait
for each other; it starts with :data:`MAGIC` and carries a CRC-32, so a torn
or foreign line is skipped without losing the records around it. A forked
child starts from zero (its parent writes what it counted). A directory that
can't be written only loses counts.

This module holds the record format both ways (:func:`encode`,
:func:`decode`) and the writing; adding the records up and compacting them
is :mod:`._stats`. It knows cache directories as paths, nothing of stamps or
jobs. It is on the path of every hit, so it imports nothing a cached
``jobstamp`` run can't afford (``fcntl`` only when it writes).
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import zlib

# The counters, in the order of a tally. To count something new, add its
# name here (its index is its position) and increment that index where it
# happens: records carry counters by name, readers add up every name they
# meet (an older reader keeps a newer counter), and `jobstamp cache stats
# --json` shows them all.
COUNTERS = ("hits", "misses", "runs", "saved_ns", "lease_waits", "lease_wait_ns")
HITS, MISSES, RUNS, SAVED_NS, LEASE_WAITS, LEASE_WAIT_NS = range(6)

STATS_FILE = "stats"

MAGIC = b"@jobstamps-stats/1 "
# A long-lived process writes its counts at least this often (seconds), when
# it next counts something after that time.
FLUSH_INTERVAL = 60.0
# A process that finds the stats file this large after appending to it
# compacts it (:mod:`._stats`), so that it stays small even if nobody runs
# `jobstamp cache stats`.
COMPACT_BYTES = 256 * 1024

# What this process counted and has not written yet, by (cache directory,
# kind, name); kind is "function" or "command". The lists live as long as
# the process (jobs keep them), and are emptied in place.
_tallies: dict[tuple[str, str, str], list[int]] = {}
_next_flush = time.monotonic() + FLUSH_INTERVAL

# Bytes written as themselves in a record; every other byte is %XX.
_PLAIN = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:+<>()[]~"
)


def tally(root: str, kind: str, name: str) -> list[int]:
    """
    The counts this process keeps for *name* (a function, or a command's
    program) in the cache directory *root*: one int per :data:`COUNTERS`.
    """
    key = (os.path.abspath(root), kind, name)
    counts = _tallies.get(key)
    if counts is None:
        counts = _tallies[key] = [0] * len(COUNTERS)
    return counts


def pending(root: str) -> dict[tuple[str, str], list[int]]:
    """
    What this process counted in *root* and has not written yet.
    """
    root = os.path.abspath(root)
    return {
        (kind, name): counts[:]
        for (where, kind, name), counts in list(_tallies.items())
        if where == root and any(counts)
    }


def tick() -> None:
    """
    Write the counts if :data:`FLUSH_INTERVAL` has passed since the last
    write: called now and then as calls are counted.
    """
    if time.monotonic() >= _next_flush:
        flush()


def flush() -> None:
    """
    Append this process's unwritten counts to each cache directory's
    ``stats`` file, one record per directory. Counts that can't be written
    stay counted here, for the next try.
    """
    global _next_flush
    _next_flush = time.monotonic() + FLUSH_INTERVAL
    by_root: dict[str, list[tuple[str, str, list[int], list[int]]]] = {}
    for (root, kind, name), counts in list(_tallies.items()):
        if any(counts):
            by_root.setdefault(root, []).append((kind, name, counts[:], counts))
    for root, entries in by_root.items():
        record = encode(
            [
                (kind, name, dict(zip(COUNTERS, taken, strict=True)))
                for kind, name, taken, _ in entries
            ]
        )
        size = append(os.path.join(root, STATS_FILE), record)
        if size < 0:
            continue
        for _, _, taken, counts in entries:
            # Subtracted, not zeroed: a count made meanwhile stays.
            for i, value in enumerate(taken):
                counts[i] -= value
        if size > COMPACT_BYTES:
            _compact(root)


def encode(entries: list[tuple[str, str, dict[str, int]]]) -> bytes:
    """
    One record: ``MAGIC <crc32> kind,name,counter=value,...;...`` and a
    newline, the kinds and names %-escaped so that no separator (nor the
    magic) can appear in them.
    """
    payload = b";".join(
        b",".join(
            [
                _escape(kind),
                _escape(name),
                *(b"%s=%d" % (c.encode(), v) for c, v in counters.items() if v),
            ]
        )
        for kind, name, counters in entries
    )
    return b"%s%08x %s\n" % (MAGIC, zlib.crc32(payload), payload)


def decode(data: bytes) -> list[list[tuple[str, str, dict[str, int]]]]:
    """
    The intact records in *data*, each a list of ``(kind, name, counters)``;
    a torn, corrupt or foreign line is skipped, and the records after it
    are still read.
    """
    records = []
    for chunk in data.split(MAGIC)[1:]:
        line, newline, _ = chunk.partition(b"\n")
        if not newline or len(line) < 9 or line[8:9] != b" ":
            continue
        payload = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(payload):
                continue
            records.append([_entry(part) for part in payload.split(b";") if part])
        except ValueError:
            continue
    return records


def _entry(part: bytes) -> tuple[str, str, dict[str, int]]:
    kind, name, *fields = part.split(b",")
    counters: dict[str, int] = {}
    for field in fields:
        counter, _, value = field.partition(b"=")
        if not value.isdigit():
            raise ValueError(f"bad counter {field!r}")
        counters[counter.decode("ascii")] = int(value)
    return _unescape(kind), _unescape(name), counters


def _escape(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return b"".join(
        bytes((byte,)) if byte in _PLAIN else b"%%%02X" % byte for byte in raw
    )


def _unescape(raw: bytes) -> str:
    parts = raw.split(b"%")
    out = bytearray(parts[0])
    for part in parts[1:]:
        out.append(int(part[:2], 16))
        out += part[2:]
    return out.decode("utf-8", "surrogateescape")


def append(path: str, record: bytes) -> int:
    """
    Append *record* to the file at *path* in one ``os.write``; the file's
    size after it, or -1 if it could not be written.

    The writer holds a shared ``flock`` on the file while it writes, taken
    without waiting, and writes only to the file that still has that name:
    a compaction (:mod:`._stats`) renames the file, then locks it
    exclusively before reading it, so it reads every record written to it.
    A writer that finds the file being compacted, or renamed, opens the new
    one.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    for _ in range(8):
        try:
            fd = os.open(path, flags, 0o600)
        except OSError:
            return -1
        try:
            if not _share(fd, path):
                continue
            if os.write(fd, record) != len(record):
                return -1
            return os.fstat(fd).st_size
        except OSError:
            return -1
        finally:
            os.close(fd)
    return -1


def _compact(root: str) -> None:
    # Rarely (every COMPACT_BYTES of records), at a flush: never on a hit.
    try:
        from . import _stats

        _stats.compact(root)
    except Exception:  # counts are never worth an error at exit
        pass


def _share(fd: int, path: str) -> bool:
    """
    Whether the file open at *fd* may be written: shared-locked, and still
    the one named *path*. Where ``flock`` is not available it may always be.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # being compacted: it was renamed already
    except OSError:
        return True  # no locks on this filesystem: write unlocked
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (named.st_ino, named.st_dev) == (mine.st_ino, mine.st_dev)


def _zero_in_child() -> None:
    # A forked child starts from zero: its parent writes what it counted.
    for counts in _tallies.values():
        counts[:] = [0] * len(counts)
    _in_multiprocessing()


def _in_multiprocessing() -> None:
    """
    Have multiprocessing flush this process's counts when it ends one of
    its children, which leave through ``os._exit`` (no ``atexit``).

    A child forked by multiprocessing empties its finalizer registry before
    running its target, then runs its after-fork hooks: the finalizer is
    registered by such a hook, so that it survives. multiprocessing is
    never imported here; a process that has not imported it has no such
    children.
    """
    global _after_fork_registered
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    util.Finalize(None, flush, exitpriority=0)
    if not _after_fork_registered:  # children inherit the registration
        util.register_after_fork(_finalize_in_child, _finalize_in_child)
        _after_fork_registered = True


_after_fork_registered = False


def _finalize_in_child(_: object) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, flush, exitpriority=0)


atexit.register(flush)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_zero_in_child)
_in_multiprocessing()


def is_stats_file(name: str) -> bool:
    """
    Whether *name*, in a cache directory, is one of the statistics' files:
    ``stats`` and its compacted, renamed and lock files.
    """
    return name == STATS_FILE or (
        name.startswith(STATS_FILE + ".") and name.endswith((".base", ".old", ".lock"))
    )
