"""
What a stamped callable is: the part of every key that is not its arguments.

A function is its name (:func:`._code.function_name`), a digest of its code,
and the values it closes over. Everything but the closure values is worked
out once, when the function is decorated; the closure cells are read again at
every call (a rebound ``nonlocal`` or a mutated list must not keep an old
key), and a function without cells pays nothing for them. A bound method
adds its object; a wrapper with ``__wrapped__`` (another stamped function, an
``lru_cache``) is its own type around the identity of what it wraps.

Knows callables, code and closures; knows nothing of signatures, stamps or
how a key is laid out.
"""

from __future__ import annotations

from ._code import FunctionType, MethodType, code_digest, function_name
from ._encode import encode_cell, encode_value, refused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class Identity:
    """
    The identity of one stamped callable.

    *name* is what its stamps are filed under, *fixed* the encoding of all
    that can't change after decoration, *cells* the ``(variable, cell)``
    pairs read at each call, *live* the ``(what, value)`` pairs (a bound
    method's object) encoded at each call.
    """

    __slots__ = ("_active", "cells", "fixed", "live", "name", "variables")

    def __init__(self, func: Callable[..., object], ignore: Iterable[str] = ()) -> None:
        self.name = function_name(func)
        ignored = frozenset(ignore)
        parts: list[bytes] = []
        cells: list[tuple[str, Any]] = []
        live: list[tuple[str, object]] = []
        variables: list[str] = []
        self._active = _describe(func, ignored, parts, cells, live, variables)
        self.fixed = b"".join(parts)
        self.cells = tuple(cells)
        self.live = tuple(live)
        # Every closure variable, ignored or not: what ignore= may name.
        self.variables = tuple(variables)

    @property
    def changes(self) -> bool:
        """
        Whether anything of this identity is read at each call.
        """
        return bool(self.cells or self.live)

    def check(self) -> None:
        """
        Encode what is read at each call once, so that a closure value that
        can't be keyed is an error now rather than at the first call.
        """
        self.encode_live([])

    def encode_live(self, out: list[bytes]) -> None:
        """
        Append the current values of the closure cells and live objects.

        Raises:
            TypeError: one of them can't be keyed; the message names it.
        """
        active = self._active
        for variable, cell in self.cells:
            try:
                encode_cell(cell, out, active)
            except refused() as e:
                raise TypeError(e.for_closure(variable, self.name)) from None
        for what, value in self.live:
            try:
                encode_value(value, out, active)
            except refused() as e:
                e.within.append(what)
                e.ignorable = False
                raise TypeError(e.for_argument("self")) from None

    def closure(self) -> tuple[tuple[str, object], ...]:
        """
        ``(variable, value)`` of every keyed closure cell that holds a value.
        """
        values = []
        for variable, cell in self.cells:
            try:
                values.append((variable, cell.cell_contents))
            except ValueError:
                continue
        return tuple(values)


def _describe(
    func: Any,
    ignored: frozenset[str],
    parts: list[bytes],
    cells: list[tuple[str, Any]],
    live: list[tuple[str, object]],
    variables: list[str],
) -> tuple[object, ...]:
    """
    Append the fixed encoding of *func* to *parts* and what must be read at
    each call to *cells* and *live*; return the functions whose closures are
    keyed (a function met again in its own closure is keyed as a reference).
    """
    cls = type(func)
    if cls is FunctionType:
        code = func.__code__
        parts.append(b"F" + code_digest(code))
        names = code.co_freevars
        variables.extend(names)
        kept = [
            (name, cell)
            for name, cell in zip(names, func.__closure__ or (), strict=True)
            if name not in ignored
        ]
        parts.append(b"%d:" % len(kept))
        for name, _ in kept:
            raw = name.encode("utf-8", "surrogatepass")
            parts.append(b"%d:%b" % (len(raw), raw))
        cells.extend(kept)
        return (func,)
    if cls is MethodType or (hasattr(func, "__func__") and hasattr(func, "__self__")):
        # A method bound to its object (or a stamped method bound to one).
        parts.append(b"M")
        method = getattr(func.__func__, "__qualname__", "")
        live.append((f"the object of the bound method {method}", func.__self__))
        return _describe(func.__func__, ignored, parts, cells, live, variables)
    wrapped = getattr(func, "__wrapped__", None)
    if wrapped is not None and callable(wrapped):
        # Another stamped function, an lru_cache: its type around what it wraps.
        parts.append(b"W" + _type_name(cls))
        return _describe(wrapped, ignored, parts, cells, live, variables)
    # A built-in, a mock, a callable object: its type (its name is keyed too).
    parts.append(b"O" + _type_name(cls))
    return ()


def _type_name(cls: type) -> bytes:
    raw = f"{cls.__module__}.{cls.__qualname__}".encode("utf-8", "surrogatepass")
    return b"%d:%b" % (len(raw), raw)
