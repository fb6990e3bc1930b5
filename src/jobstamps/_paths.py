"""
The files a job names, its dependencies and its outputs, as the user gives
them: an iterable of path-likes, or a callable that receives the call's
arguments and returns one. They become tuples of ``str``.

This module knows paths and the caller's arguments; nothing of stamps.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    PathSpec = (
        Iterable[str | os.PathLike[str]]
        | Callable[..., Iterable[str | os.PathLike[str]]]
        | None
    )


def spec(spec: object, what: str) -> tuple[str, ...] | Callable[..., Iterable[object]]:
    """
    A job's own *what* (``"dependencies"`` or ``"outputs"``): a tuple of
    paths, or the callable that lists them for each call.

    Raises:
        TypeError: *spec* is neither.
    """
    if spec is None:
        return ()
    if callable(spec):
        return spec
    return as_paths(spec, what)


def of_call(
    own: tuple[str, ...] | Callable[..., Iterable[object]],
    given: Iterable[object] | None,
    what: str,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    function: str,
) -> tuple[str, ...]:
    """
    The *what* of one call of *function*: *given* with the call (the 0.0.20
    API passes them), else the job's *own*, called with the call's arguments
    if it is a callable.
    """
    if given is not None:
        return as_paths(given, what)
    if isinstance(own, tuple):
        return own
    try:
        listed = own(*args, **kwargs)
    except Exception as e:
        e.add_note(f"(raised by the {what} callable of {function})")
        raise
    return as_paths(listed, f"the {what} callable's result")


def as_paths(paths: object, what: str) -> tuple[str, ...]:
    """
    *paths* as a tuple of ``str``.

    Raises:
        TypeError: *paths* is a single path, not iterable, or holds
            something other than paths.
    """
    if type(paths) is tuple and not paths:
        return ()
    if isinstance(paths, str | bytes | os.PathLike):
        raise TypeError(
            f"jobstamps: {what} must be an iterable of paths, not the single "
            f"path {paths!r}; wrap it in a list"
        )
    try:
        items: tuple[object, ...] = tuple(paths)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"jobstamps: {what} must be an iterable of paths (or a callable "
            f"returning one), not {paths!r}"
        ) from None
    try:
        return tuple(os.fsdecode(item) for item in items)  # type: ignore[arg-type]
    except TypeError:
        bad = next(i for i in items if not isinstance(i, str | bytes | os.PathLike))
        raise TypeError(
            f"jobstamps: {what} must hold paths (str or os.PathLike), not {bad!r}"
        ) from None
