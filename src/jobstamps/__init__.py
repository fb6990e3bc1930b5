"""
Make-like caching of idempotent functions and shell commands.

This module holds the public names and ``__all__`` only, imported on first
use (PEP 562), so that a cached ``jobstamp`` run imports no more than it
needs; ``jobstamps.remote`` and ``jobstamps.exceptions`` are public too.
"""

from __future__ import annotations

__all__ = [
    "HashMethod",
    "JobstampedFunction",
    "MTimeMethod",
    "Method",
    "Pruned",
    "StampKey",
    "Stats",
    "jobstamped",
    "out_of_date",
    "prune",
    "register_key",
    "run",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._decorator import JobstampedFunction, jobstamped
    from ._encode import register_key
    from ._maintenance import Pruned, prune
    from ._methods import HashMethod, MTimeMethod
    from ._protocol import Method
    from ._stampkey import StampKey
    from ._stats import Stats
    from .jobstamp import out_of_date, run

# Names are imported on first use: a cached `jobstamp` run imports only the
# modules it needs: typing (for the decorator's generics and the Method
# protocol) and attrs (for StampKey) are not among them.
_SOURCES = {
    "HashMethod": "._methods",
    "JobstampedFunction": "._decorator",
    "MTimeMethod": "._methods",
    "Method": "._protocol",
    "Pruned": "._maintenance",
    "StampKey": "._stampkey",
    "Stats": "._stats",
    "jobstamped": "._decorator",
    "out_of_date": ".jobstamp",
    "prune": "._maintenance",
    "register_key": "._encode",
    "run": ".jobstamp",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import version

        return version("jobstamps")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'jobstamps' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(source, __name__), name)


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
