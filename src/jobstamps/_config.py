"""
The ``JOBSTAMPS_*`` environment and the default stamp directory.

Everything is read at call time, so a test or a long-lived process that
changes the environment sees the change on its next call. This module reads
settings only; it knows nothing of stamps, jobs or the command line.
"""

from __future__ import annotations

import os
import sys

DISABLED = "JOBSTAMPS_DISABLED"
DEBUG = "JOBSTAMPS_DEBUG"
ALWAYS_USE_HASHES = "JOBSTAMPS_ALWAYS_USE_HASHES"
CACHE_DIR = "JOBSTAMPS_CACHE_DIR"


# os.environ.get encodes the key and decodes the value through several
# Python-level calls, about 1 us per variable, and a cache hit reads a few.
# On POSIX os.environ keeps the environment in _data (bytes to bytes), and
# every change made through os.environ lands there; it is read directly while
# os.environ is still that mapping. Through os.environ.get, the hit of
# scenario 1 of benchmarks/run.py takes 1.5x as long (8.1 -> 12.3 us), near
# its target of 0.33x diskcache's hit.
_environ = os.environ
_data: dict[bytes, bytes] | None = getattr(_environ, "_data", None)
if type(_data) is not dict or os.name != "posix":  # pragma: no cover - not POSIX
    _data = None
_DISABLED_KEY = DISABLED.encode()
_DEBUG_KEY = DEBUG.encode()
_ALWAYS_USE_HASHES_KEY = ALWAYS_USE_HASHES.encode()


def _raw(name: str, key: bytes | None = None) -> bytes | str | None:
    if _data is not None and os.environ is _environ:
        return _data.get(name.encode() if key is None else key)
    return os.environ.get(name)


# Values that turn a flag off, as they are spelled (any case, around
# spaces); so does the empty string, or no variable at all.
_OFF = frozenset({"0", "false", "no", "off", ""})


def flag(value: bytes | str | None) -> bool:
    """
    Whether the value of a ``JOBSTAMPS_*`` flag turns it on: anything but
    unset, empty, ``0``, ``false``, ``no`` or ``off`` in any case.
    """
    if not value:
        return False
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip().lower() not in _OFF


def disabled() -> bool:
    return flag(_raw(DISABLED, _DISABLED_KEY))


def debug() -> bool:
    return flag(_raw(DEBUG, _DEBUG_KEY))


def always_use_hashes() -> bool:
    return flag(_raw(ALWAYS_USE_HASHES, _ALWAYS_USE_HASHES_KEY))


# The answer for the environment it was computed from: without it, a hit in
# the default cache directory takes 1.7x as long (9.3 -> 15.4 us, the hit of
# scenario 1 of benchmarks/run.py with no cache_dir; that scenario itself
# passes one, so no scenario measures this yet).
_last_default: tuple[object, str] = (object(), "")


def cache_dir(given: str | None = None) -> str:
    """
    The absolute path of the stamp directory: *given* (resolved against the
    current directory at every call, so that a relative one names the folder
    actually used), else :func:`default_cache_dir`.
    """
    if given is None:
        return default_cache_dir()
    if os.path.isabs(given):
        return given
    return os.path.abspath(given)


def default_cache_dir() -> str:
    """
    ``$JOBSTAMPS_CACHE_DIR``, else the user's cache directory for jobstamps.
    """
    global _last_default
    configured = _raw(CACHE_DIR)
    if configured:
        inputs: object = configured
        if not os.path.isabs(configured):
            return _resolve_default_cache_dir(os.fsdecode(configured))
    else:
        inputs = (_raw("XDG_CACHE_HOME"), _raw("HOME"))
    if _last_default[0] == inputs:
        return _last_default[1]
    root = _resolve_default_cache_dir(os.fsdecode(configured) if configured else None)
    _last_default = (inputs, root)
    return root


def _resolve_default_cache_dir(configured: str | None) -> str:
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    if sys.platform == "darwin" or sys.platform == "win32":
        import platformdirs

        return platformdirs.user_cache_dir("jobstamps", appauthor=False)
    # platformdirs' rule for Unix, written out because importing platformdirs
    # costs 15 ms or more (fresh processes), where a cached `jobstamp` run
    # has a budget of 1.5x an empty console script of about 21 ms (scenario 7
    # of benchmarks/run.py).
    # tests/test_config.py holds the two to the same answer.
    # The XDG spec says to ignore a relative $XDG_CACHE_HOME.
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.expanduser("~/.cache")
    return os.path.join(base, "jobstamps")


STORE = "JOBSTAMPS_STORE"
ROOT = "JOBSTAMPS_ROOT"


def store_url() -> str | None:
    """
    ``$JOBSTAMPS_STORE``: the URL of a remote store shared between machines.
    """
    raw = _raw(STORE)
    return os.fsdecode(raw) if raw else None


_last_root: tuple[object, str] = (object(), "")


def project_root(explicit: str | None = None) -> str:
    """
    The folder that portable stamps record paths relative to.

    *explicit* (an absolute or relative path), else ``$JOBSTAMPS_ROOT``, else
    the enclosing git work tree, else the current directory.
    """
    global _last_root
    if explicit is not None:
        return os.path.abspath(explicit)
    configured = _raw(ROOT)
    if configured:
        return os.path.abspath(os.fsdecode(configured))
    cwd = os.getcwd()
    if _last_root[0] == cwd:
        return _last_root[1]
    root = folder = cwd
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            root = folder
            break
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    _last_root = (cwd, root)
    return root


LEASE_TTL = "JOBSTAMPS_LEASE_TTL"
LEASE_WAIT = "JOBSTAMPS_LEASE_WAIT"


def setting(name: str) -> str | None:
    """
    The value of the environment variable *name*; None if unset or empty.
    """
    raw = _raw(name)
    return os.fsdecode(raw) if raw else None
