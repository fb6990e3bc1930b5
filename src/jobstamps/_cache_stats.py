"""
``jobstamp cache stats``: the hits, misses, hit rate and time saved of each
function and command in a stamp directory, most time saved first, then
their total; ``--json`` for programs, ``--zero`` to start counting again.

The records are added up and compacted by :mod:`._stats`; this module only
shows them. Imported only for this command.
"""

from __future__ import annotations

import os

from . import _stats, _statsfile
from ._options import FLAG, HELP, STAMP_DIRECTORY, Option, UsageError, say

STATS_OPTIONS = (
    STAMP_DIRECTORY,
    Option(("--json",), FLAG, "Print the statistics as JSON."),
    Option(
        ("--zero",),
        FLAG,
        "Then zero them (no count made meanwhile is lost).",
    ),
    HELP,
)


def stats_main(root: str, options: dict[str, object]) -> int:
    """
    Show (and with ``--zero``, zero) the statistics of the stamp directory
    *root*; the exit status.
    """
    if not os.path.isdir(root):
        raise UsageError(f"no stamp directory at {root}")
    totals = _statsfile.compact(root, zero=bool(options["zero"]))
    order = sorted(totals, key=lambda key: (-totals[key].get("saved_ns", 0), key))
    rows = [_row(kind, name, totals[kind, name]) for kind, name in order]
    total: dict[str, int] = {}
    for counters in totals.values():
        for counter, value in counters.items():
            total[counter] = total.get(counter, 0) + value
    if options["json"]:
        import json

        document = {
            "directory": root,
            "entries": rows,
            "total": _row("total", "", total),
            "zeroed": bool(options["zero"]),
        }
        say(json.dumps(document, indent=2) + "\n")
        return 0
    if rows:
        say(_table([*rows, _row("total", "", total)]))
    else:
        say(f"no statistics yet in {root}\n")
    if options["zero"]:
        say(f"zeroed the statistics of {root}\n")
    return 0


def _row(kind: str, name: str, counters: dict[str, int]) -> dict[str, object]:
    row: dict[str, object] = {"kind": kind, "name": name}
    for counter in ("hits", "misses", "runs", "saved_ns"):
        row[counter] = counters.get(counter, 0)
    row.update((c, v) for c, v in sorted(counters.items()) if c not in row)
    stats = _stats.Stats.of(counters)
    row["hit_rate"] = stats.hit_rate
    row["time_saved"] = stats.time_saved
    if "lease_wait_ns" in counters:
        row["time_waited"] = stats.time_waited
    return row


def _table(rows: list[dict[str, object]]) -> str:
    # Waits for another machine's lease only where some call waited.
    waits = any(row.get("lease_waits") for row in rows)
    header = ["HITS", "MISSES", "HIT RATE", "SAVED"]
    if waits:
        header += ["WAITS", "WAITED"]
    cells = []
    for row in rows:
        line = [
            str(row["hits"]),
            str(row["misses"]),
            f"{row['hit_rate']:.1%}" if row["hits"] or row["misses"] else "-",
            _seconds(row["time_saved"]),  # type: ignore[arg-type]
        ]
        if waits:
            waited = row.get("time_waited", 0.0)
            line += [str(row.get("lease_waits", 0)), _seconds(waited)]  # type: ignore[arg-type]
        cells.append(line)
    widths = [
        max(len(line[i]) for line in [header, *cells]) for i in range(len(header))
    ]
    lines = [
        "  ".join([*(c.rjust(w) for c, w in zip(line, widths, strict=True)), name])
        for line, name in zip(
            [header, *cells], ["NAME", *(_name(row) for row in rows)], strict=True
        )
    ]
    return "\n".join(lines) + "\n"


def _name(row: dict[str, object]) -> str:
    if row["kind"] == "command":
        return f"$ {row['name']}"
    if row["kind"] == "function":
        return str(row["name"])
    return str(row["kind"])  # the total


def _seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
