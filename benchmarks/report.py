"""
What a run found: the printed tables, the checks against targets and the
figures kept for ``--json``. This module knows nothing of how figures are
taken, nor of any scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from typing import Any

MiB = 1 << 20


class Report:
    """
    The checks and figures of one run, printed as they come.
    """

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.scenarios: dict[str, object] = {}

    def table(self, title: str, rows: list[tuple[str, str, str]]) -> None:
        print(f"\n== {title}")
        width = max(len(r[0]) for r in rows)
        for name, value, note in rows:
            print(f"  {name:<{width}}  {value:>14}  {note}")

    def times_table(self, title: str, m: dict[str, float], floor: str) -> None:
        """
        A table of times per operation, each also as a multiple of *floor*'s.
        """
        base = m[floor]
        self.table(
            title, [(k, fmt_time(v), f"{v / base:8.2f}x floor") for k, v in m.items()]
        )

    def check(
        self,
        label: str,
        value: float,
        limit: float,
        kind: str = "max",
        unit: str = "x",
    ) -> None:
        """
        *kind* "max": value must be at most *limit*; "min": at least.
        """
        ok = value <= limit if kind == "max" else value >= limit
        entry = {"check": label, "value": value, "limit": limit, "kind": kind}
        entry.update(unit=unit, met=ok)
        self.checks.append(entry)
        print(f"  {describe(entry)}")

    def info(self, label: str, value: float) -> None:
        print(f"  [info] {label}: {value:.3f}x")

    def skip(self, label: str, why: str) -> None:
        print(f"  [SKIP] {label}: {why}")
        self.checks.append({"check": label, "skipped": why})

    def to_json(self, **about: object) -> str:
        return json.dumps(
            {**about, "checks": self.checks, "scenarios": self.scenarios}, indent=1
        )


def describe(c: dict[str, Any]) -> str:
    if "skipped" in c:
        return f"[SKIP] {c['check']}: {c['skipped']}"
    sign = "<=" if c["kind"] == "max" else ">="
    unit = c["unit"]
    sep = "" if unit == "x" else " "
    return (
        f"[{'MET ' if c['met'] else 'MISS'}] {c['check']}: {c['value']:.3f}{sep}{unit} "
        f"(target {sign} {c['limit']}{sep}{unit})"
    )


def summary(checks: list[dict[str, Any]]) -> None:
    print("\n== summary")
    for c in checks:
        print(f"  {describe(c)}")


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / MiB:.0f} MiB/s"


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def versions() -> str:
    from importlib.metadata import version

    names = ["jobstamps", "joblib", "diskcache", "blake3", "xxhash"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except Exception:
            parts.append(f"{name} (missing)")
    return ", ".join(parts)
