"""
Scenario 2: a hit with 1,000 dependency files and ``MTimeMethod``, against a
bare ``os.stat`` loop over the same files; target at most 1.2x.
"""

from __future__ import annotations

from harness import Bench
from scenarios._hit_deps import run_with


def run(bench: Bench) -> None:
    run_with(bench, "2", "mtime", 1.2)
