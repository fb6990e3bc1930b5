"""
:class:`Stats`, what ``f.stats()`` returns: a function's counters in its
cache directory, as its records (:mod:`._statsfile`) add them up, plus what
this process counted and has not written yet (:mod:`._counters`).

Imported for ``f.stats()`` and ``jobstamp cache stats``; never on a hit.
"""

from __future__ import annotations

import attrs

from . import _counters
from ._counters import COUNTERS
from ._statsfile import Totals, read


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


def _pending(root: str) -> Totals:
    return {
        key: dict(zip(COUNTERS, counts, strict=True))
        for key, counts in _counters.pending(root).items()
    }
