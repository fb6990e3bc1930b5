"""
Rules the decorator's controls share with the command line's options: a
time to live as a stamp's greatest age, and environment variables as part of
a key.

``@jobstamped(ttl=..., env=...)`` and ``jobstamp --ttl ... --env ...`` both
come here, so that each rule is written once. This module knows numbers,
durations and the environment; nothing of stamps, keys or option syntax.
"""

from __future__ import annotations

from ._key import names_in

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def ttl_problem(ns: int) -> str | None:
    """
    Why a time to live of *ns* nanoseconds is refused, or None.
    """
    if ns <= 0:
        return "a time to live must be more than zero"
    return None


def max_age_ns(ttl: object, name: str = "ttl") -> int:
    """
    The time to live *ttl*, seconds (an int or a float) or a
    :class:`datetime.timedelta`, in nanoseconds.

    Raises:
        TypeError: *ttl* is not a duration.
        ValueError: it is not more than zero, or not finite.
    """
    ns = duration_ns(ttl, name, negative_ok=True)
    problem = ttl_problem(ns)
    if problem is not None:
        raise ValueError(
            f"jobstamps: {name}={ttl!r} is not a valid duration: {problem}"
        )
    return ns


def duration_ns(value: object, name: str, *, negative_ok: bool = False) -> int:
    """
    *value*, seconds (an int or a float) or a :class:`datetime.timedelta`,
    in nanoseconds.

    Raises:
        TypeError: *value* is not a duration.
        ValueError: it is not finite, or negative unless *negative_ok*.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        import math

        if not math.isfinite(value):
            raise ValueError(
                f"jobstamps: {name}={value!r} is not a valid duration: it must be finite"
            )
        ns = round(value * 1_000_000_000)
    else:
        import datetime

        if not isinstance(value, datetime.timedelta):
            raise TypeError(
                f"jobstamps: {name} must be seconds (an int or a float) or a "
                f"datetime.timedelta, not {value!r}"
            )
        ns = value // datetime.timedelta(microseconds=1) * 1000
    if ns < 0 and not negative_ok:
        raise ValueError(
            f"jobstamps: {name}={value!r} is not a valid duration: it can't be negative"
        )
    return ns


def env_names(names: Iterable[str], what: str = "env") -> tuple[str, ...]:
    """
    The names of environment variables in *names*, sorted, each once.

    Raises:
        TypeError: *names* is a single string, or holds something else.
        ValueError: a name is empty or holds ``=`` (or a NUL).
    """
    given = names_in(names, what)
    for name in given:
        if not name or "=" in name or "\0" in name:
            prefix = "" if what.startswith("-") else "jobstamps: "
            raise ValueError(
                f"{prefix}{what} takes names of environment variables, not {name!r}"
            )
    return tuple(sorted(set(given)))
