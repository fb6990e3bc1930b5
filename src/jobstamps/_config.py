"""
The ``JOBSTAMPS_*`` environment and the default stamp directory.

Everything is read at call time, so a test or a long-lived process that
changes the environment sees the change on its next call.
"""

from __future__ import annotations

import os
import sys

DISABLED = "JOBSTAMPS_DISABLED"
DEBUG = "JOBSTAMPS_DEBUG"
ALWAYS_USE_HASHES = "JOBSTAMPS_ALWAYS_USE_HASHES"
CACHE_DIR = "JOBSTAMPS_CACHE_DIR"


def _flag(name: str) -> bool:
    # As in jobstamps 0.0.20, any non-empty value turns a flag on.
    return bool(os.environ.get(name))


def disabled() -> bool:
    return _flag(DISABLED)


def debug() -> bool:
    return _flag(DEBUG)


def always_use_hashes() -> bool:
    return _flag(ALWAYS_USE_HASHES)


def default_cache_dir() -> str:
    """
    ``$JOBSTAMPS_CACHE_DIR``, else the user's cache directory for jobstamps.
    """
    configured = os.environ.get(CACHE_DIR)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    if sys.platform == "darwin" or sys.platform == "win32":
        import platformdirs

        return platformdirs.user_cache_dir("jobstamps", appauthor=False)
    # platformdirs' rule for Unix, written out because importing platformdirs
    # costs about 5 ms, a third of a cached `jobstamp` run.
    # tests/test_config.py holds the two to the same answer.
    # The XDG spec says to ignore a relative $XDG_CACHE_HOME.
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.expanduser("~/.cache")
    return os.path.join(base, "jobstamps")
