"""
The statistics of a cache directory: its records added up, compacted and
zeroed; :class:`Stats`, what ``f.stats()`` returns.

Processes append records to ``<cache>/stats`` (:mod:`._counters`). A
compaction adds them up into ``stats.base``, which holds one record, and
must lose none appended meanwhile: under a lock that only compactions and
readers take (``stats.lock``), it renames ``stats`` to a new
``stats.<random>.old`` (writers then start a new ``stats``), locks that file
exclusively, which waits for the writers still appending to it (they hold a
shared lock while they write), reads it, writes the new base atomically, and
only then removes the old file. The base names the old files it took in,
so a compaction killed before removing them does not count them twice.

Reading takes the same lock, so that it never sees a compaction half done.
Imported for ``f.stats()``, ``jobstamp cache stats``, and by a process whose
records grew the file past :data:`._counters.COMPACT_BYTES`, when it writes
them; never on a hit. It knows the files and records, nothing of stamps or
jobs.
"""

from __future__ import annotations

import os

import attrs

from . import _counters, _fs
from ._counters import COUNTERS, STATS_FILE
from ._lock import StampLock

BASE_FILE = STATS_FILE + ".base"
_OLD_SUFFIX = ".old"
# The base records the old files it took in as entries of this kind.
_TAKEN = "taken"

Totals = dict[tuple[str, str], dict[str, int]]


@attrs.frozen
class Stats:
    """
    How a stamped function has fared in its cache directory, over every
    process that counted (this one included) since the counts were last
    zeroed.

    Attributes:
        hits: Calls answered from a stamp, without running.
        misses: Calls that found no fresh stamp, and ran.
        runs: Times the function ran: its misses, and its refreshes.
        time_saved: Seconds not spent running: over the hits, how long the
            runs that made their stamps took.
        lease_waits: Calls that waited for another machine holding the
            stamp's lease (see *lease*).
        time_waited: Seconds those calls waited.
    """

    hits: int = 0
    misses: int = 0
    runs: int = 0
    time_saved: float = 0.0
    lease_waits: int = 0
    time_waited: float = 0.0

    @property
    def hit_rate(self) -> float:
        """
        Hits out of the calls that were hits or misses; 0.0 before any.
        """
        calls = self.hits + self.misses
        return self.hits / calls if calls else 0.0

    @classmethod
    def of(cls, counters: dict[str, int]) -> Stats:
        """
        The statistics in a total of *counters*, by name.
        """
        return cls(
            hits=counters.get("hits", 0),
            misses=counters.get("misses", 0),
            runs=counters.get("runs", 0),
            time_saved=counters.get("saved_ns", 0) / 1e9,
            lease_waits=counters.get("lease_waits", 0),
            time_waited=counters.get("lease_wait_ns", 0) / 1e9,
        )


def stats_of(root: str, kind: str, name: str) -> Stats:
    """
    The :class:`Stats` of *name* in the cache directory *root*: what its
    records add up to, and what this process counted and has not written.
    """
    total = read(root).get((kind, name), {})
    for counter, value in _pending(root).get((kind, name), {}).items():
        total[counter] = total.get(counter, 0) + value
    return Stats.of(total)


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
            _fs.write_atomically(
                os.path.join(root, BASE_FILE), [_counters.encode(entries)]
            )
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
    for record in _counters.decode(_contents(os.path.join(root, BASE_FILE))):
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
    for record in _counters.decode(data):
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


def _pending(root: str) -> Totals:
    return {
        key: dict(zip(COUNTERS, counts, strict=True))
        for key, counts in _counters.pending(root).items()
    }


def _guard(root: str) -> StampLock:
    # Taken by compactions and readers, never by a process appending.
    return StampLock(os.path.join(root, STATS_FILE))
