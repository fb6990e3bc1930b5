"""
The scenarios, one module each, and the one table that registers them.

A scenario module has a docstring saying what it measures against what, and
``run(bench: harness.Bench) -> None``, which sets up, measures, prints its
table, checks its targets and keeps its figures in ``bench.report``. Adding a
scenario: write ``sN_name.py`` beside this file, then add its line to
``SCENARIOS``; ``--only N`` runs it. Modules are imported only when their
scenario runs, so they may import jobstamps and the peers at the top.

A scenario knows the harness, the report and jobstamps' public API; anything
private of jobstamps it gets from ``internals``, never by importing it. No
scenario knows another (scenarios 2 and 3 share ``_hit_deps``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from harness import Bench

# Number -> module, in the order a full run takes them.
SCENARIOS: dict[str, str] = {
    "1": "s1_hit",
    "2": "s2_hit_mtime",
    "3": "s3_hit_hash",
    "4": "s4_first_hash",
    "5": "s5_scale",
    "6": "s6_large_result",
    "7": "s7_cli",
    "8": "s8_command_streams",
}


def runner(number: str) -> Callable[[Bench], None]:
    """
    The ``run`` of scenario *number*.
    """
    module = importlib.import_module(f"{__name__}.{SCENARIOS[number]}")
    run: Callable[[Bench], None] = module.run
    return run
