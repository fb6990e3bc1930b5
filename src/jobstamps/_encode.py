"""
The canonical encoding of a value: what an argument or a closure value is keyed by.

Values that are equal, with the same types all the way down, encode to the
same bytes in every process; any other two values encode differently. dict
and set order don't matter, while ``1``, ``1.0``, ``True``, ``"1"`` and
``b"1"`` all differ, and nothing depends on the process (no ``hash()``, no
memory addresses). A value with no exact encoding is refused with a
:class:`TypeError` that says what it is and what to do instead: an open file,
a generator, a lock, a numpy or pandas object that is not an array, an object
printed with its address.

Functions passed as values are keyed by their identity (name, code digest,
defaults and closure values), never by ``id()``.

This module knows values and :func:`register_key`'s table; it knows nothing
of signatures, stamps or :class:`~jobstamps.StampKey`. numpy is never imported
here: :mod:`._arrays` is, when a value's type comes from numpy.
"""

from __future__ import annotations

import os
import sys

from ._code import FunctionType, MethodType, code_digest, function_name, module_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ._unkeyable import Unkeyable

    T = TypeVar("T")

_ADDRESS_MARK = " at 0x"


_BuiltinType = type(len)
_MethodWrapperType = type((0).__add__)
_DescriptorTypes = (
    type(str.upper),
    type(object.__init__),
    type(dict.__dict__["fromkeys"]),
)
_ModuleType = type(sys)

# register_key's table, and what it says about each type met so far.
_registry: dict[type, Callable[[Any], object]] = {}
_lookups: dict[type, Callable[[Any], object] | None] = {}


def register_key(cls: type[T], func: Callable[[T], object]) -> None:
    """
    Key instances of *cls*, and of its subclasses, by ``func(value)``.

    For types jobstamps can't key on its own (or keys in a way you want to
    change): *func* returns something it can key, such as a DataFrame's bytes
    in a stable format, or a tuple of the fields that make the value. The
    key also records the value's class, so two types never share a key.

    Raises:
        TypeError: *cls* is not a class or *func* is not callable.
    """
    if not isinstance(cls, type):
        raise TypeError(f"jobstamps.register_key: {cls!r} is not a class")
    if not callable(func):
        raise TypeError(f"jobstamps.register_key: {func!r} is not callable")
    _registry[cls] = func
    _lookups.clear()


def refused() -> type[Unkeyable]:
    """
    The error of a refused value, for ``except refused() as e``: refusals are
    rare, so :mod:`._unkeyable` is imported when one happens, not by a hit.
    """
    from ._unkeyable import Unkeyable

    return Unkeyable


def encode(value: object, out: list[bytes], parameter: str) -> None:
    """
    Append the canonical encoding of *value*, an argument of *parameter*, to
    *out*.

    Every encoding starts with a tag and carries its own length, so the
    encoding of a sequence of values can't be read two ways.

    Raises:
        TypeError: *value* has no exact encoding; the message names
            *parameter* and says what to do.
    """
    try:
        encode_value(value, out, ())
    except refused() as e:
        raise TypeError(e.for_argument(parameter)) from None


def _str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"%d:%b" % (len(raw), raw)


def _qualified(cls: type) -> bytes:
    return _str(f"{cls.__module__}.{cls.__qualname__}")


def encode_value(value: object, out: list[bytes], active: tuple[object, ...]) -> None:
    """
    :func:`encode` without the message: raises :class:`Unkeyable`.

    *active* holds the functions whose closures are being encoded, outermost
    first; a function met again inside its own closure (a stamped function
    that calls itself) is encoded as a reference to it.
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
        # repr() of a float is exact (the shortest text that reads back the
        # same number); every NaN prints as nan.
        out.append(b"f" + _str(repr(value)))
    elif cls is bytes or cls is bytearray:
        out.append(b"b" if cls is bytes else b"B")
        out.append(b"%d:" % len(value))  # type: ignore[arg-type]
        out.append(bytes(value))  # type: ignore[call-overload]
    elif cls is tuple or cls is list:
        items: tuple[object, ...] | list[object] = value  # type: ignore[assignment]
        out.append(b"(%d:" % len(items) if cls is tuple else b"[%d:" % len(items))
        for item in items:
            encode_value(item, out, active)
    elif cls is dict:
        _mapping(value, out, active)  # type: ignore[arg-type]
    elif cls is set or cls is frozenset:
        members = sorted(_encoded(item, active) for item in value)  # type: ignore[attr-defined]
        out.append(b"<%d:" % len(members) if cls is set else b">%d:" % len(members))
        out.extend(members)
    elif cls is FunctionType:
        encode_function(value, out, active)
    else:
        _encode_object(value, cls, out, active)


def _mapping(
    mapping: dict[object, object], out: list[bytes], active: tuple[object, ...]
) -> None:
    pairs = []
    for k, v in mapping.items():
        pair: list[bytes] = []
        encode_value(k, pair, active)
        encode_value(v, pair, active)
        pairs.append(b"".join(pair))
    pairs.sort()
    out.append(b"{%d:" % len(pairs))
    out.extend(pairs)


def _encoded(value: object, active: tuple[object, ...]) -> bytes:
    parts: list[bytes] = []
    encode_value(value, parts, active)
    return b"".join(parts)


def encode_function(func: Any, out: list[bytes], active: tuple[object, ...]) -> None:
    """
    A function by its name, code, defaults and the current values of its
    closure: the same function in every process, and two lambdas (or two
    closures of one factory) that would compute differently differ.
    """
    for depth, seen in enumerate(active):
        if seen is func:
            out.append(b"^%d;" % depth)
            return
    name = function_name(func)
    out.append(b"c" + _str(name) + code_digest(func.__code__))
    inner = (*active, func)
    encode_value(func.__defaults__, out, inner)
    encode_value(func.__kwdefaults__, out, inner)
    for variable, cell in zip(
        func.__code__.co_freevars, func.__closure__ or (), strict=True
    ):
        try:
            encode_cell(cell, out, inner)
        except refused() as e:
            e.within.append(f"closure variable {variable!r} of {name}")
            raise


def encode_cell(cell: Any, out: list[bytes], active: tuple[object, ...]) -> None:
    """
    The value in closure *cell*; a cell still empty (a function that refers
    to itself, before it is assigned; ``__class__`` while the class is being
    made) is keyed as such.
    """
    try:
        value = cell.cell_contents
    except ValueError:
        out.append(b"E")
        return
    encode_value(value, out, active)


def _encode_object(
    value: object, cls: type, out: list[bytes], active: tuple[object, ...]
) -> None:
    custom = _registered(cls)
    if custom is not None:
        keyed = custom(value)
        if type(keyed) is cls:
            from . import _unkeyable

            raise _unkeyable.same_type(cls)
        out.append(b"x" + _qualified(cls))
        encode_value(keyed, out, active)
        return
    if isinstance(value, os.PathLike):
        out.append(b"p" + _qualified(cls))
        encode_value(os.fspath(value), out, active)
        return
    package = cls.__module__.partition(".")[0]
    if package == "numpy" or package == "pandas":
        _encode_numpy_or_pandas(value, cls, package, out, active)
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
            try:
                encode_value(getattr(value, name), out, active)
            except refused() as e:
                e.within.append(f"field {name!r} of {cls.__qualname__}")
                raise
        return
    if (callable(value) or cls is _ModuleType) and _encode_callable(
        value, cls, out, active
    ):
        return
    if cls is memoryview:
        view: memoryview = value  # type: ignore[assignment]
        out.append(b"v" + _str(view.format))
        encode_value(view.shape, out, active)
        data = view.tobytes()
        out.append(b"%d:%b" % (len(data), data))
        return
    if cls.__module__ == "re" and cls.__name__ == "Pattern":
        # Its repr is cut at 200 characters.
        out.append(b"R")
        encode_value(value.pattern, out, active)  # type: ignore[attr-defined]
        out.append(b"%d;" % value.flags)  # type: ignore[attr-defined]
        return
    if _encode_container(value, cls, out, active):
        return
    from . import _unkeyable

    refusal = _unkeyable.refusal(value, cls)
    if refusal is not None:
        raise refusal
    text = repr(value)
    if cls.__repr__ is object.__repr__ or _ADDRESS_MARK in text:  # type: ignore[comparison-overlap]
        raise _unkeyable.address(cls, text)
    out.append(b"r" + _qualified(cls) + _str(text))


def _registered(cls: type) -> Callable[[Any], object] | None:
    try:
        return _lookups[cls]
    except KeyError:
        pass
    found = None
    for base in cls.__mro__:
        found = _registry.get(base)
        if found is not None:
            break
    if len(_lookups) >= 4096:
        _lookups.clear()
    _lookups[cls] = found
    return found


def _encode_numpy_or_pandas(
    value: object, cls: type, package: str, out: list[bytes], active: tuple[object, ...]
) -> None:
    # Their reprs shorten and round: keyed exactly here, or refused.
    from . import _arrays, _unkeyable

    if package == "pandas":
        raise _unkeyable.pandas(cls)
    why = _arrays.encode(
        value, out, lambda item, into: encode_value(item, into, active)
    )
    if why is not None:
        raise _unkeyable.numpy(cls, why)


def _encode_callable(
    value: Any, cls: type, out: list[bytes], active: tuple[object, ...]
) -> bool:
    """
    Classes, modules, methods, built-ins and partials by what they are;
    False for other callables, which are keyed like any object.
    """
    if isinstance(value, type):
        out.append(b"C" + _str(f"{module_name(value.__module__)}.{value.__qualname__}"))
    elif cls is _ModuleType:
        out.append(b"m" + _str(module_name(value.__name__)))
    elif cls is MethodType:
        out.append(b"M")
        encode_value(value.__func__, out, active)
        try:
            encode_value(value.__self__, out, active)
        except refused() as e:
            e.within.append(f"the object of the bound method {function_name(value)}")
            raise
    elif cls is _BuiltinType or cls is _MethodWrapperType:
        owner = value.__self__
        if owner is None or type(owner) is _ModuleType:
            module = getattr(value, "__module__", None) or getattr(
                owner, "__name__", ""
            )
            out.append(b"n" + _str(f"{module}.{value.__qualname__}"))
        else:
            out.append(b"k" + _str(value.__qualname__))
            try:
                encode_value(owner, out, active)
            except refused() as e:
                e.within.append(f"the object of the bound method {value.__qualname__}")
                raise
    elif cls in _DescriptorTypes:
        out.append(b"D" + _qualified(value.__objclass__) + _str(value.__name__))
    elif _is(cls, "functools", "partial"):
        out.append(b"P" + _qualified(cls))
        encode_value(value.func, out, active)
        encode_value(value.args, out, active)
        encode_value(value.keywords, out, active)
    elif _is(cls, "functools", "_lru_cache_wrapper"):
        # A memoised function computes what the function does.
        out.append(b"L")
        encode_value(value.__wrapped__, out, active)
    else:
        return False
    return True


def _is(cls: type, module: str, name: str) -> bool:
    return cls.__module__ == module and cls.__name__ == name


def _encode_container(
    value: Any, cls: type, out: list[bytes], active: tuple[object, ...]
) -> bool:
    """
    Subclasses of the builtin containers (OrderedDict, defaultdict, Counter,
    a user's list...) and deques, by class, contents and attributes, never
    by a repr that would hold their items' reprs.
    """
    if isinstance(value, dict):
        out.append(b"d" + _qualified(cls))
        _mapping(dict(value), out, active)
        if _is(cls, "collections", "OrderedDict"):
            encode_value(list(value), out, active)  # its order matters to ==
        if _is(cls, "collections", "defaultdict"):
            encode_value(value.default_factory, out, active)  # type: ignore[attr-defined]
    elif isinstance(value, list | tuple | set | frozenset):
        base = next(b for b in (list, tuple, set, frozenset) if isinstance(value, b))
        out.append(b"l" + _qualified(cls))
        encode_value(base(value), out, active)
    elif _is(cls, "collections", "deque"):
        out.append(b"q")
        encode_value(list(value), out, active)
        encode_value(value.maxlen, out, active)
        return True
    else:
        return False
    state = getattr(value, "__dict__", None)
    encode_value(dict(state) if state else None, out, active)
    return True


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
