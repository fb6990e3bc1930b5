"""
Hits, misses, runs, time saved and lease waits, counted in the process and
appended to the cache directory's statistics now and then.

A hit must not write or lock anything, so counting is a list increment in
the process (:func:`tally`). The counts go to disk as one record per cache
directory per flush (:mod:`._statsfile`): at exit (``atexit``; in the
children multiprocessing forks, which leave through ``os._exit``, its
finalizers), and every :data:`FLUSH_INTERVAL` seconds in a long-lived
process. A forked child starts from zero (its parent writes what it
counted). A directory that can't be written only loses counts.

It knows cache directories as paths, nothing of stamps or jobs. It is on the
path of every hit, so it imports nothing a cached ``jobstamp`` run can't
afford: the files' module only when it writes.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

# The counters, in the order of a tally. To count something new, add its
# name here (its index is its position) and increment that index where it
# happens: records carry counters by name, readers add up every name they
# meet (an older reader keeps a newer counter), and `jobstamp cache stats
# --json` shows them all.
COUNTERS = ("hits", "misses", "runs", "saved_ns", "lease_waits", "lease_wait_ns")
HITS, MISSES, RUNS, SAVED_NS, LEASE_WAITS, LEASE_WAIT_NS = range(6)


# A long-lived process writes its counts at least this often (seconds), when
# it next counts something after that time.
FLUSH_INTERVAL = 60.0
# A process that finds the stats file this large after appending to it
# compacts it (:mod:`._statsfile`), so that it stays small even if nobody runs
# `jobstamp cache stats`.
COMPACT_BYTES = 256 * 1024

# What this process counted and has not written yet, by (cache directory,
# kind, name); kind is "function" or "command". The lists live as long as
# the process (jobs keep them), and are emptied in place.
_tallies: dict[tuple[str, str, str], list[int]] = {}
_next_flush = time.monotonic() + FLUSH_INTERVAL


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
        from . import _statsfile

        record = _statsfile.encode(
            [
                (kind, name, dict(zip(COUNTERS, taken, strict=True)))
                for kind, name, taken, _ in entries
            ]
        )
        size = _statsfile.append(os.path.join(root, _statsfile.STATS_FILE), record)
        if size < 0:
            continue
        for _, _, taken, counts in entries:
            # Subtracted, not zeroed: a count made meanwhile stays.
            for i, value in enumerate(taken):
                counts[i] -= value
        if size > COMPACT_BYTES:
            _compact(root)


def _compact(root: str) -> None:
    # Rarely (every COMPACT_BYTES of records), at a flush: never on a hit.
    try:
        from . import _statsfile

        _statsfile.compact(root)
    except Exception:  # counts are never worth an error at exit
        pass


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
