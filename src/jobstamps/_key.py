"""
How a call becomes a key: binding, canonical encoding, and the digest.

A call is bound to its function's signature with defaults applied, so
``f(1, b=2)``, ``f(1, 2)`` and ``f(1)`` (``b=2`` by default) are one call.
Its arguments are encoded into bytes that are equal exactly when the values
are: dict and set order don't matter, ``1``, ``1.0``, ``True``, ``"1"`` and
``b"1"`` all differ, and nothing depends on the process (no ``hash()``, no
memory addresses). The digest of those bytes names the stamp; a
:class:`~jobstamps.StampKey` (an attrs class) is built only when asked for.
"""

from __future__ import annotations

import os
import sys

from ._code import FunctionType
from ._code import blake2b as blake2b
from ._code import function_name as function_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from collections.abc import Callable, Mapping

    from ._stampkey import StampKey

KEY_FORMAT = b"jobstamps-key/1\0"

_ADDRESS_MARK = " at 0x"


_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


class Binder:
    """
    Binds a call to a function's parameters, in signature order.

    ``bind(args, kwargs)`` returns one value per parameter, defaults applied,
    ``*args`` as a tuple and ``**kwargs`` as a dict, exactly what
    ``inspect.Signature.bind`` plus ``apply_defaults`` would give. Plain
    functions are bound straight from their code object, several times faster;
    anything unusual, including every call that does not fit, is handed to
    :mod:`inspect` so its errors are Python's own.
    """

    __slots__ = (
        "_argcount",
        "_defaults",
        "_first_default",
        "_func",
        "_kwdefaults",
        "_kwonly",
        "_positional",
        "_posonly",
        "_signature",
        "_varargs",
        "_varkw",
        "exact",
        "names",
    )

    def __init__(self, func: Callable[..., object]) -> None:
        self._func = func
        self._signature: inspect.Signature | None = None
        # How many positional arguments bind to themselves, unchanged: all
        # of the parameters, when there are only plain positional ones.
        self.exact = -1
        code = getattr(func, "__code__", None)
        if (
            type(func) is not FunctionType
            or code is None
            or hasattr(func, "__wrapped__")
            or hasattr(func, "__signature__")
        ):
            self._signature = _signature_of(func)
            self.names: tuple[str, ...] = tuple(self._signature.parameters)
            return
        argcount = code.co_argcount
        kwonlycount = code.co_kwonlyargcount
        varnames = code.co_varnames
        self._argcount = argcount
        self._posonly = code.co_posonlyargcount
        self._positional: tuple[str, ...] = varnames[:argcount]
        self._kwonly: tuple[str, ...] = varnames[argcount : argcount + kwonlycount]
        index = argcount + kwonlycount
        self._varargs: str | None = None
        self._varkw: str | None = None
        if code.co_flags & _CO_VARARGS:
            self._varargs = varnames[index]
            index += 1
        if code.co_flags & _CO_VARKEYWORDS:
            self._varkw = varnames[index]
        defaults: tuple[object, ...] = getattr(func, "__defaults__", None) or ()
        self._defaults = defaults
        self._first_default = argcount - len(defaults)
        self._kwdefaults: dict[str, object] = (
            getattr(func, "__kwdefaults__", None) or {}
        )
        names = list(self._positional)
        if self._varargs is not None:
            names.append(self._varargs)
        names.extend(self._kwonly)
        if self._varkw is not None:
            names.append(self._varkw)
        self.names = tuple(names)
        if names == list(self._positional):
            self.exact = argcount

    def bind(
        self, args: tuple[object, ...], kwargs: Mapping[str, object]
    ) -> tuple[object, ...]:
        if self._signature is not None:
            return self._slow_bind(args, kwargs)
        argcount = self._argcount
        given = len(args)
        if given > argcount and self._varargs is None:
            return self._slow_bind(args, kwargs)
        rest = dict(kwargs) if kwargs else None
        values = list(args[:argcount])
        positional = self._positional
        if rest:
            for i in range(self._posonly, min(given, argcount)):
                if positional[i] in rest:
                    return self._slow_bind(args, kwargs)
        for i in range(given, argcount):
            name = positional[i]
            if rest and i >= self._posonly and name in rest:
                values.append(rest.pop(name))
            elif i >= self._first_default:
                values.append(self._defaults[i - self._first_default])
            else:
                return self._slow_bind(args, kwargs)
        if self._varargs is not None:
            values.append(args[argcount:])
        for name in self._kwonly:
            if rest and name in rest:
                values.append(rest.pop(name))
            elif name in self._kwdefaults:
                values.append(self._kwdefaults[name])
            else:
                return self._slow_bind(args, kwargs)
        if self._varkw is not None:
            values.append(rest or {})
        elif rest:
            return self._slow_bind(args, kwargs)
        return tuple(values)

    def _slow_bind(
        self, args: tuple[object, ...], kwargs: Mapping[str, object]
    ) -> tuple[object, ...]:
        signature = self._signature or _signature_of(self._func)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments.values())


def _signature_of(func: Callable[..., object]) -> inspect.Signature:
    import inspect

    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        # Callables without an introspectable signature (some builtins and
        # mocks) take anything; their arguments are keyed as given.
        return inspect.Signature(
            [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        )


class KeyBuilder:
    """
    Turns calls of one function into stamp digests and :class:`StampKey`\\ s.

    Everything that is the same for every call (the function's name, its
    *version*, its parameter names, and a *context* such as what makes a
    stored result readable) is encoded once, here.
    """

    __slots__ = ("_exact", "_hasher", "_prefix", "binder", "function", "version")

    def __init__(
        self, func: Callable[..., object], version: object, context: bytes = b""
    ) -> None:
        self.function = function_name(func)
        self.version = version
        self.binder = Binder(func)
        parts = [KEY_FORMAT, b"%d:%b" % (len(context), context)]
        encode(self.function, parts, "the function's name")
        encode(version, parts, "version")
        encode(self.binder.names, parts, "the parameter names")
        self._prefix = b"".join(parts)
        # Copying a hasher that has seen the prefix is cheaper than hashing
        # the prefix again.
        self._hasher = blake2b(self._prefix, digest_size=20)
        self._exact = self.binder.exact

    def digest(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
        if not kwargs and len(args) == self._exact:
            # The common call: every parameter given by position, as str or
            # int. Its encoding, written out (the same bytes as encode()'s).
            hasher = self._hasher.copy()
            for value in args:
                cls = type(value)
                if cls is int:
                    hasher.update(b"i%d;" % value)  # type: ignore[str-format]
                elif cls is str:
                    raw = value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
                    hasher.update(b"s%d:%b" % (len(raw), raw))
                else:
                    break
            else:
                return hasher.hexdigest()
        return self.digest_of_bound(self.binder.bind(args, kwargs))

    def digest_of_bound(self, values: tuple[object, ...]) -> str:
        parts: list[bytes] = []
        for name, value in zip(self.binder.names, values, strict=True):
            encode(value, parts, name)
        hasher = self._hasher.copy()
        hasher.update(b"".join(parts))
        return hasher.hexdigest()

    def key(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> StampKey:
        # attrs is imported here, never on the way to a hit.
        from ._stampkey import StampKey

        values = self.binder.bind(args, kwargs)
        return StampKey(
            function=self.function,
            version=self.version,
            arguments=tuple(zip(self.binder.names, values, strict=True)),
            digest=self.digest_of_bound(values),
        )


def _str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"%d:%b" % (len(raw), raw)


def _qualified(cls: type) -> bytes:
    return _str(f"{cls.__module__}.{cls.__qualname__}")


def encode(value: object, out: list[bytes], parameter: str) -> None:
    """
    Append the canonical encoding of *value* to *out*.

    Every encoding starts with a tag and carries its own length, so the
    encoding of a sequence of values can't be read two ways.

    Raises:
        TypeError: *value* (an argument of *parameter*) has no stable
            encoding: its repr is Python's default, which embeds a memory
            address.
    """
    cls = type(value)
    if cls is str:
        out.append(b"s" + _str(value))  # type: ignore[arg-type]
    elif cls is int:
        out.append(b"i%d;" % value)  # type: ignore[str-format]
    elif value is None:
        out.append(b"N")
    elif cls is bool:
        out.append(b"T" if value else b"F")
    elif cls is float or cls is complex:
        out.append(b"f" + _str(repr(value)))
    elif cls is bytes or cls is bytearray:
        out.append(b"b" if cls is bytes else b"B")
        out.append(b"%d:" % len(value))  # type: ignore[arg-type]
        out.append(bytes(value))  # type: ignore[call-overload]
    elif cls is tuple or cls is list:
        items: tuple[object, ...] | list[object] = value  # type: ignore[assignment]
        out.append(b"(%d:" % len(items) if cls is tuple else b"[%d:" % len(items))
        for item in items:
            encode(item, out, parameter)
    elif cls is dict:
        mapping: dict[object, object] = value  # type: ignore[assignment]
        pairs = []
        for k, v in mapping.items():
            pair: list[bytes] = []
            encode(k, pair, parameter)
            encode(v, pair, parameter)
            pairs.append(b"".join(pair))
        pairs.sort()
        out.append(b"{%d:" % len(pairs))
        out.extend(pairs)
    elif cls is set or cls is frozenset:
        members = sorted(_encoded(item, parameter) for item in value)  # type: ignore[attr-defined]
        out.append(b"<%d:" % len(members) if cls is set else b">%d:" % len(members))
        out.extend(members)
    else:
        _encode_object(value, cls, out, parameter)


def _encoded(value: object, parameter: str) -> bytes:
    parts: list[bytes] = []
    encode(value, parts, parameter)
    return b"".join(parts)


def _encode_object(value: object, cls: type, out: list[bytes], parameter: str) -> None:
    if isinstance(value, os.PathLike):
        out.append(b"p" + _qualified(cls))
        encode(os.fspath(value), out, parameter)
        return
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        out.append(b"e" + _qualified(cls) + _str(value.name))
        return
    fields = _fields_of(value, cls)
    if fields is not None:
        out.append(b"o" + _qualified(cls) + b"%d:" % len(fields))
        for name in fields:
            out.append(_str(name))
            encode(getattr(value, name), out, parameter)
        return
    owner = getattr(value, "__self__", None)
    if isinstance(value, type) or (
        callable(value)
        and hasattr(value, "__qualname__")
        and hasattr(value, "__module__")
        # a bound method is keyed by its object too: leave it to repr
        and (owner is None or type(owner).__name__ == "module")
    ):
        name = (
            f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
        )
        if "<" not in name:  # not a lambda, not a function local to another
            out.append(b"g" + _str(name))
            return
    text = repr(value)
    if cls.__repr__ is object.__repr__ or _ADDRESS_MARK in text:  # type: ignore[comparison-overlap]
        raise TypeError(
            f"jobstamps can't key argument {parameter!r}: {cls.__qualname__} "
            f"values print as {text!r}, which holds a memory address and so "
            "differs in every run. Give the class a __repr__ that shows its "
            "value, make it an attrs class or a dataclass, or pass plainer data."
        )
    out.append(b"r" + _qualified(cls) + _str(text))


def _fields_of(value: object, cls: type) -> tuple[str, ...] | None:
    """
    Field names of an attrs class, dataclass or named tuple instance.
    """
    attrs_fields = getattr(cls, "__attrs_attrs__", None)
    if attrs_fields is not None:
        return tuple(a.name for a in attrs_fields)
    if hasattr(cls, "__dataclass_fields__"):
        dataclasses = sys.modules["dataclasses"]
        return tuple(f.name for f in dataclasses.fields(value))
    if isinstance(value, tuple) and hasattr(cls, "_fields"):
        return tuple(cls._fields)
    return None
