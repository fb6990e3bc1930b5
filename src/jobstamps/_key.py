"""
How a call becomes a key: binding, the layout of a key, and its digest.

A call is bound to its function's signature with defaults applied, so
``f(1, b=2)``, ``f(1, 2)`` and ``f(1)`` (``b=2`` by default) are one call.
Its arguments are encoded canonically (:mod:`._encode`) after the function's
identity (:mod:`._identity`: name, code digest, closure values), its
*version*, and the values of the environment variables named in *env*; the
digest of those bytes names the stamp. Parameters and closure variables
named in *ignore* are left out.

This module knows nothing of stamps, and builds a :class:`~jobstamps.StampKey`
(an attrs class) only when :meth:`KeyBuilder.key` asks for one: a hit works
with the digest alone.
"""

from __future__ import annotations

import os

from ._code import FunctionType
from ._code import blake2b as blake2b
from ._code import function_name as function_name
from ._encode import encode as encode
from ._identity import Identity

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from collections.abc import Callable, Iterable, Mapping

    from ._stampkey import StampKey

KEY_FORMAT = b"jobstamps-key/2\0"


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

    Everything that is the same for every call (the function's identity, its
    *version*, its parameter names, and a *context* such as what makes a
    stored result readable) is encoded once, here.

    Raises:
        TypeError: *ignore* names something that is neither a parameter nor
            a closure variable, or a closure value can't be keyed.
    """

    __slots__ = (
        "_env",
        "_exact",
        "_hasher",
        "_identity",
        "_kept",
        "_live",
        "binder",
        "function",
        "version",
    )

    def __init__(
        self,
        func: Callable[..., object],
        version: object,
        context: bytes = b"",
        ignore: Iterable[str] = (),
        env: tuple[str, ...] = (),
    ) -> None:
        ignore = _names(ignore)
        self._identity = identity = Identity(func, ignore)
        self.function = identity.name
        self.version = version
        self.binder = binder = Binder(func)
        unknown = sorted(
            n for n in ignore if n not in binder.names and n not in identity.variables
        )
        if unknown:
            raise TypeError(
                f"jobstamps: ignore names {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} neither a parameter nor "
                f"a closure variable of {self.function} (parameters: "
                f"{', '.join(binder.names) or 'none'}; closure variables: "
                f"{', '.join(identity.variables) or 'none'})"
            )
        # Positions of the parameters keyed; None when all of them are.
        kept = [i for i, name in enumerate(binder.names) if name not in ignore]
        self._kept = None if len(kept) == len(binder.names) else tuple(kept)
        identity.check()
        self._env = env
        self._live = identity.changes or bool(env)
        parts = [KEY_FORMAT, b"%d:%b" % (len(context), context)]
        encode(self.function, parts, "the function's name")
        parts.append(identity.fixed)
        encode(version, parts, "version")
        encode(self._names_kept(), parts, "the parameter names")
        if env:
            encode(env, parts, "env")
        # Copying a hasher that has seen the prefix is cheaper than hashing
        # the prefix again.
        self._hasher = blake2b(b"".join(parts), digest_size=20)
        self._exact = binder.exact if self._kept is None else -1

    def _names_kept(self) -> tuple[str, ...]:
        names = self.binder.names
        return names if self._kept is None else tuple(names[i] for i in self._kept)

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
                if self._live:
                    live: list[bytes] = []
                    self._encode_live(live)
                    hasher.update(b"".join(live))
                return hasher.hexdigest()
        return self.digest_of_bound(self.binder.bind(args, kwargs))

    def digest_of_bound(self, values: tuple[object, ...]) -> str:
        parts: list[bytes] = []
        if self._kept is None:
            for name, value in zip(self.binder.names, values, strict=True):
                encode(value, parts, name)
        else:
            names = self.binder.names
            for i in self._kept:
                encode(values[i], parts, names[i])
        if self._live:
            self._encode_live(parts)
        hasher = self._hasher.copy()
        hasher.update(b"".join(parts))
        return hasher.hexdigest()

    def _encode_live(self, parts: list[bytes]) -> None:
        # What is read at each call besides the arguments: closure values,
        # a bound method's object, the environment variables of *env*.
        self._identity.encode_live(parts)
        if self._env:
            encode(environment(self._env), parts, "env")

    def key(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> StampKey:
        from ._stampkey import StampKey

        values = self.binder.bind(args, kwargs)
        names = self.binder.names
        kept = range(len(names)) if self._kept is None else self._kept
        return StampKey(
            function=self.function,
            version=self.version,
            arguments=tuple((names[i], values[i]) for i in kept),
            digest=self.digest_of_bound(values),
            closure=self._identity.closure(),
            environment=environment(self._env),
        )


def _names(ignore: Iterable[str]) -> frozenset[str]:
    return frozenset(names_in(ignore, "ignore"))


def names_in(names: Iterable[str], what: str) -> tuple[str, ...]:
    """
    The names in *names*, given as the argument *what* (``env``,
    ``ignore``): an iterable of strings, never a single one.

    Raises:
        TypeError: *names* is a single string, or holds something else.
    """
    if isinstance(names, str | bytes):
        raise TypeError(
            f"jobstamps: {what} must be an iterable of names, not the single "
            f"name {names!r}; wrap it in a tuple: {what}=({names!r},)"
        )
    try:
        given = tuple(names)
    except TypeError:
        raise TypeError(
            f"jobstamps: {what} must be an iterable of names, not {names!r}"
        ) from None
    bad = next((name for name in given if not isinstance(name, str)), None)
    if bad is not None:
        raise TypeError(f"jobstamps: {what} must hold names (str), not {bad!r}")
    return given


def environment(names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """
    ``(name, value)`` of each of *names* (from :func:`._controls.env_names`) as the
    environment holds it now; None for a variable that is not set, which
    differs from one set to the empty string.
    """
    environ = os.environ
    return tuple((name, environ.get(name)) for name in names)
