"""
:class:`StampKey`: the key of one call, as a value to look at.

Built only when asked for (``f.key(...)``): a call looks its stamp up by the
digest alone, so that attrs is never imported on the way to a hit. Knows the
shape of a key; knows nothing of how its digest is computed.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class StampKey:
    """
    The key of one call: which function, which version, which arguments.

    Two calls share a stamp exactly when their keys are equal, that is when
    their *function* and *digest* are; *digest* is a stable hex digest of
    everything else (and of the function's code), the same in every process
    and on every machine. *arguments* are the keyed arguments, bound to the
    function's parameters with defaults applied, *closure* the values of
    the closure variables keyed with them, and *environment* the
    ``(name, value)`` of the environment variables keyed (None: not set).
    """

    function: str
    version: object = attrs.field(eq=False)
    arguments: tuple[tuple[str, object], ...] = attrs.field(eq=False)
    digest: str
    closure: tuple[tuple[str, object], ...] = attrs.field(default=(), eq=False)
    environment: tuple[tuple[str, str | None], ...] = attrs.field(default=(), eq=False)
