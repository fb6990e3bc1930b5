"""
The statistics files of a cache directory: the record format, appending a
record, and adding the records up and compacting them.

Processes append their counts (:mod:`._counters`) to ``<cache>/stats`` as
records: one line each, written with ``O_APPEND`` in a single ``os.write``,
starting with :data:`MAGIC` and carrying a CRC-32, so that a torn or
foreign line is skipped without losing the records around it. A compaction
adds them up into ``stats.base``, which holds one record, and must lose none
appended meanwhile: under a lock that only compactions and readers take
(``stats.lock``), it renames ``stats`` to a new ``stats.<random>.old``
(writers then start a new ``stats``), locks that file exclusively, which
waits for the writers still appending to it (they hold a shared lock while
they write), reads it, writes the new base atomically, and only then removes
the old file. The base names the old files it took in, so a compaction
killed before removing them does not count them twice. Reading takes the
same lock, so that it never sees a compaction half done.

Imported when counts are written (at exit, not on a hit), for ``f.stats()``
and ``jobstamp cache stats``. It knows files and records, nothing of stamps,
jobs or what the counters mean.
"""

from __future__ import annotations

import os
import zlib

from . import _fs
from ._lock import StampLock

STATS_FILE = "stats"
BASE_FILE = STATS_FILE + ".base"
_OLD_SUFFIX = ".old"
# The base records the old files it took in as entries of this kind.
_TAKEN = "taken"
MAGIC = b"@jobstamps-stats/1 "
# Bytes written as themselves in a record; every other byte is %XX.
_PLAIN = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:+<>()[]~"
)

Totals = dict[tuple[str, str], dict[str, int]]


def is_stats_file(name: str) -> bool:
    """
    Whether *name*, in a cache directory, is one of the statistics' files:
    ``stats`` and its compacted, renamed and lock files.
    """
    return name == STATS_FILE or (
        name.startswith(STATS_FILE + ".") and name.endswith((".base", ".old", ".lock"))
    )


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


def read(root: str) -> Totals:
    """
    The counters of every function and command in *root*, added up.
    """
    with _guard(root):
        totals, _ = _read(root)
        _add_records(totals, _contents(os.path.join(root, STATS_FILE)))
        return totals


def compact(root: str, *, zero: bool = False) -> Totals:
    """
    Add up the records of *root* into its base, and return the totals as
    they were (before zeroing them, with *zero*).

    A directory that can't be written is only read.
    """
    with _guard(root):
        try:
            os.rename(os.path.join(root, STATS_FILE), _old_name(root))
        except FileNotFoundError:
            pass
        except OSError:  # read-only
            totals, _ = _read(root)
            _add_records(totals, _contents(os.path.join(root, STATS_FILE)))
            return totals
        totals, olds = _read(root, exclusive=True)
        kept: Totals = {} if zero else totals
        entries = [(kind, name, counters) for (kind, name), counters in kept.items()]
        entries.extend((_TAKEN, os.path.basename(old), {}) for old in olds)
        try:
            _fs.write_atomically(os.path.join(root, BASE_FILE), [encode(entries)])
        except OSError:
            pass
        else:
            for old in olds:
                _fs.quietly(os.unlink, old)
        if zero:
            return totals
        # Records appended since the rename are not in the base; they are
        # shown all the same.
        shown = {key: dict(counters) for key, counters in totals.items()}
        _add_records(shown, _contents(os.path.join(root, STATS_FILE)))
        return shown


def _read(root: str, exclusive: bool = False) -> tuple[Totals, list[str]]:
    """
    The totals of the base and of the old files it did not take in yet (not
    of the live file); and every old file, for removal. With *exclusive*,
    each old file is locked first, to wait for the writers still appending
    to it.
    """
    totals: Totals = {}
    taken: set[str] = set()
    for record in decode(_contents(os.path.join(root, BASE_FILE))):
        for kind, name, counters in record:
            if kind == _TAKEN:
                taken.add(name)
            else:
                _add(totals, kind, name, counters)
    olds = _old_files(root)
    for old in olds:
        if os.path.basename(old) not in taken:
            _add_records(totals, _contents(old, exclusive))
    return totals, olds


def _add_records(totals: Totals, data: bytes) -> None:
    for record in decode(data):
        for kind, name, counters in record:
            if kind != _TAKEN:
                _add(totals, kind, name, counters)


def _add(totals: Totals, kind: str, name: str, counters: dict[str, int]) -> None:
    total = totals.setdefault((kind, name), {})
    for counter, value in counters.items():
        total[counter] = total.get(counter, 0) + value


def _contents(path: str, exclusive: bool = False) -> bytes:
    try:
        with open(path, "rb") as file:
            if exclusive:
                _lock_exclusively(file.fileno())
            return file.read()
    except OSError:
        return b""


def _lock_exclusively(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):  # pragma: no cover - no flock here
        pass


def _old_files(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(
        os.path.join(root, name)
        for name in names
        if name.startswith(STATS_FILE + ".") and name.endswith(_OLD_SUFFIX)
    )


def _old_name(root: str) -> str:
    return os.path.join(root, f"{STATS_FILE}.{os.urandom(6).hex()}{_OLD_SUFFIX}")


def _guard(root: str) -> StampLock:
    # Taken by compactions and readers, never by a process appending.
    return StampLock(os.path.join(root, STATS_FILE))
