"""
What a run found: the printed tables, the checks against targets, the figures
kept for ``--json`` and the panels that ``--plot`` draws.

Figures are kept twice: ``scenarios`` as measured (seconds, or bytes for
memory), as earlier runs wrote them, and ``panels`` in the unit a reader
compares (time per operation, MiB/s, MiB), each check on a panel naming the
bar it is about and its target in the panel's unit. This module knows
nothing of how figures are taken, nor of any scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20


class Report:
    """
    The checks, figures and panels of one run, printed as they come.
    """

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.scenarios: dict[str, object] = {}
        self.panels: list[dict[str, Any]] = []

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
        drawn: dict[str, Any] | None = None,
    ) -> None:
        """
        *kind* "max": value must be at most *limit*; "min": at least.
        *drawn*: where a plot shows the target (see ``Panel``).
        """
        ok = value <= limit if kind == "max" else value >= limit
        entry = {"check": label, "value": value, "limit": limit, "kind": kind}
        entry.update(unit=unit, met=ok, **(drawn or {}))
        self.checks.append(entry)
        print(f"  {describe(entry)}")

    def info(self, label: str, value: float) -> None:
        print(f"  [info] {label}: {value:.3f}x")

    def skip(self, label: str, why: str) -> None:
        print(f"  [SKIP] {label}: {why}")
        self.checks.append({"check": label, "skipped": why})

    def panel(
        self,
        key: str,
        title: str,
        values: dict[str, float],
        unit: str,
        kinds: dict[str, str] | None = None,
    ) -> Panel:
        """
        Keep *values* for the plot, in *unit*: "s" (per operation, lower is
        better), "MiB/s" (higher is better) or "MiB" (lower is better).
        Each bar's kind (``kind_of``) can be set in *kinds*.
        """
        self.panels.append(
            {
                "key": key,
                "title": title,
                "unit": unit,
                "better": "higher" if unit == "MiB/s" else "lower",
                "values": dict(values),
                "kinds": {k: (kinds or {}).get(k) or kind_of(k) for k in values},
            }
        )
        return Panel(self, self.panels[-1])

    def to_json(self, **about: object) -> str:
        return json.dumps(
            {
                **about,
                "checks": self.checks,
                "scenarios": self.scenarios,
                "panels": self.panels,
            },
            indent=1,
        )


class Panel:
    """
    Checks on the figures of one panel, each kept with the bar it is about
    and its target in the panel's unit.
    """

    def __init__(self, report: Report, panel: dict[str, Any]) -> None:
        self.report = report
        self.key: str = panel["key"]
        self.values: dict[str, float] = panel["values"]
        self.better: str = panel["better"]

    def ratio(self, label: str, bar: str, reference: str, limit: float) -> None:
        """
        *bar* / *reference* must be at most *limit* (lower is better) or at
        least *limit* (higher is better).
        """
        kind = "max" if self.better == "lower" else "min"
        drawn = {
            "panel": self.key,
            "bar": bar,
            "reference": reference,
            "target": limit * self.values[reference],
        }
        value = self.values[bar] / self.values[reference]
        self.report.check(label, value, limit, kind, drawn=drawn)

    def at_most(self, label: str, bar: str, limit: float, unit: str) -> None:
        """
        *bar* must be at most *limit*, in the panel's unit.
        """
        drawn = {"panel": self.key, "bar": bar, "target": limit}
        self.report.check(label, self.values[bar], limit, unit=unit, drawn=drawn)


def kind_of(name: str) -> str:
    """
    What a contender is, from its name: "jobstamps" (this checkout),
    "0.0.20", "peer", "floor" or "reference".
    """
    if name.startswith("floor:"):
        return "floor"
    if name.startswith(("reference:", "sanity:")):
        return "reference"
    if name.startswith("jobstamps 0.0.20"):
        return "0.0.20"
    if name.startswith("jobstamps"):
        return "jobstamps"
    return "peer"


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


def load(path: str) -> dict[str, Any]:
    """
    The figures a run wrote with ``--json``.
    """
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


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


def rates(nbytes: int, m: dict[str, float]) -> dict[str, float]:
    """
    MiB/s of each figure of *m*, seconds for *nbytes*.
    """
    return {k: nbytes / v / MiB for k, v in m.items()}


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
