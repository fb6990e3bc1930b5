"""
Scenario 3: a hit with 1,000 unchanged dependency files and ``HashMethod``,
against a bare ``os.stat`` loop over the same files; target at most 1.3x.

The files' mtimes are set 5 seconds into the past before the first call (see
``harness.make_files``): files modified just before they are fingerprinted
are "racily clean" and hashed again on each hit until they age.
"""

from __future__ import annotations

from harness import Bench
from scenarios._hit_deps import run_with


def run(bench: Bench) -> None:
    run_with(bench, "3", "hash", 1.3)
