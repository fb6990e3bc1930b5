"""
One picture of a run (``--plot FILE.png``): a panel per scenario or metric,
a bar per contender, coloured by kind (this checkout, 0.0.20, peers, floors),
each target a dashed line on the bar it is about, and under each panel its
checks in the words of the printed summary.

It draws from the data ``--json`` writes and nothing else, so a picture drawn
after a run and one drawn later from its JSON file (``--from-json``) are the
same. Needs matplotlib (benchmarks/requirements.txt); knows no scenario.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from report import describe

COLUMNS = 2
KINDS = {
    "jobstamps": ("#1f5fa8", "jobstamps (this checkout)"),
    "0.0.20": ("#9a6fc4", "jobstamps 0.0.20"),
    "peer": ("#e8913a", "peers (diskcache, joblib.Memory), other digests"),
    "floor": ("#8c8c8c", "floors (what it cannot cost less than), baselines"),
    "reference": ("#cfcfcf", "references"),
}
MET, MISSED = "#1a7f37", "#cf222e"
LABEL_BOX = {"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.6}
# A value axis spanning more than this factor is drawn on a log scale.
LOG_SPAN = 20


def draw(data: dict[str, Any], path: str) -> None:
    """
    Draw the panels of *data* (as ``--json`` writes it) into *path*.
    """
    matplotlib.use("Agg")  # files only, no display
    panels: list[dict[str, Any]] = data.get("panels") or []
    if not panels:
        raise SystemExit("no panels to draw: a JSON file from before --plot existed?")
    checks: dict[str, list[dict[str, Any]]] = {}
    for check in data.get("checks", []):
        if "panel" in check:
            checks.setdefault(check["panel"], []).append(check)
    rows = math.ceil(len(panels) / COLUMNS)
    fig, axes = plt.subplots(
        rows,
        COLUMNS,
        figsize=(9 * COLUMNS, 3.6 * rows + 1.2),
        squeeze=False,
        layout=ConstrainedLayoutEngine(h_pad=0.12, hspace=0.05),
    )
    flat: list[Axes] = list(axes.flat)
    for ax, panel in zip(flat, panels, strict=False):
        _panel(ax, panel, checks.get(panel["key"], []))
    for ax in flat[len(panels) :]:
        ax.axis("off")
    handles: list[Any] = [
        Patch(color=color, label=label) for color, label in KINDS.values()
    ]
    handles += [
        Line2D([], [], color=MET, ls="--", lw=2, label="target, met"),
        Line2D([], [], color=MISSED, ls="--", lw=2, label="target, missed"),
    ]
    if len(flat) > len(panels):  # in the first empty cell
        flat[len(panels)].legend(handles=handles, loc="center", frameon=False)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
    rounds = f"medians of {data['rounds']} rounds" if data.get("rounds") else ""
    if data.get("few_rounds") not in (None, data.get("rounds")):
        rounds += f", {data['few_rounds']} where one sample takes seconds"
    if data.get("quick"):
        rounds += " (--quick)"
    lines = [f"jobstamps benchmarks: {rounds}", data.get("machine", "")]
    lines.append(data.get("versions", ""))
    fig.suptitle("\n".join(line for line in lines if line), fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panel(ax: Axes, panel: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    values: dict[str, float] = panel["values"]
    names = list(values)
    scale, unit = _unit(panel["unit"], values)
    shown = [values[n] * scale for n in names]
    ys = list(range(len(names)))[::-1]  # the first contender on top
    colors = [KINDS[panel["kinds"].get(n, "peer")][0] for n in names]
    ax.barh(ys, shown, color=colors, height=0.7)
    ax.set_yticks(ys, [textwrap.fill(n, 40) for n in names], fontsize=8)
    positive = [v for v in shown if v > 0]
    targets = [c["target"] * scale for c in checks]
    top = max(shown + targets)
    if positive and top / min(positive) > LOG_SPAN:
        ax.set_xscale("log")
        ax.set_xlim(min(positive + targets) / 2, top * 6)
    else:
        ax.set_xlim(0, top * 1.3)
    for y, v in zip(ys, shown, strict=True):
        ax.text(v, y, f" {_fmt(v)} {unit}", va="center", fontsize=8, bbox=LABEL_BOX)
    for c in checks:
        y = ys[names.index(c["bar"])]
        t = c["target"] * scale
        ax.plot(
            [t, t],
            [y - 0.45, y + 0.45],
            color=MET if c["met"] else MISSED,
            ls="--",
            lw=2,
        )
    better = "higher" if panel["better"] == "higher" else "lower"
    ax.set_xlabel(f"{unit}, {better} is better", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(panel["title"], fontsize=10, loc="left", fontweight="bold")
    ax.grid(axis="x", color="#e4e4e4", lw=0.8)
    ax.set_axisbelow(True)
    for i, c in enumerate(checks):
        ax.text(
            0,
            -0.2 - 0.09 * i,
            describe(c),
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            color=MET if c["met"] else MISSED,
        )


def _unit(unit: str, values: dict[str, float]) -> tuple[float, str]:
    """
    The factor and unit to show *values* in: times in s, ms, µs or ns.
    """
    if unit != "s":
        return 1.0, unit
    largest = max(values.values())
    for factor, name in ((1.0, "s"), (1e3, "ms"), (1e6, "µs")):
        if largest >= 1 / factor:
            return factor, name
    return 1e9, "ns"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
