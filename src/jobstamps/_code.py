"""
What names a function, and what its code is: ``module:qualname`` and a digest.

A function's name is its module and qualified name. A function of
``__main__`` is named after what ran as ``__main__``: the module given to
``python -m``, else the script's path relative to the project root, so two
scripts never share stamps and two checkouts of one script do.

The code digest covers the bytecode, constants and names of a code object and
of the code objects nested in it, and nothing that moves without changing
behaviour: no file name, no line numbers. Adding a comment or a blank line
above a function keeps its digest; changing its body changes it.

This module knows code objects and the ``__main__`` module; it knows nothing
of argument values, closure values or stamps.
"""

from __future__ import annotations

import os
import sys

from . import _config

try:
    # The C module behind hashlib.blake2b: importing hashlib itself loads
    # OpenSSL, 3.1 ms or more against 0.2 ms (fresh processes), where a
    # cached `jobstamp` run is held to 1.5x an empty console script of about
    # 21 ms (scenario 7 of benchmarks/run.py).
    from _blake2 import blake2b as blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b as blake2b

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType

MAIN = "__main__"


def _plain_function() -> None: ...


class _Probe:
    def method(self) -> None: ...


# The types of functions, bound methods and code objects, without importing
# types (or inspect).
FunctionType = type(_plain_function)
MethodType = type(_Probe().method)
_CodeType = type(_plain_function.__code__)

# Digests of code objects already seen (functions passed as arguments are
# digested at every call). The code object is kept with its digest, so its
# id() is not reused while the entry lives.
_digests: dict[int, tuple[object, bytes]] = {}
_MAX_DIGESTS = 4096


def function_name(func: object) -> str:
    """
    ``module:qualname`` of *func*, the name its stamps are filed under.

    Callables with only a ``__name__`` (a mock, say) are named by it, as
    jobstamps 0.0.20 did. Functions of ``__main__`` are named after the
    module or script that ran (:func:`module_name`).

    Raises:
        TypeError: *func* has neither ``__qualname__`` nor ``__name__``.
    """
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(
            f"jobstamps can't name {func!r}: it has neither __qualname__ nor "
            "__name__, and stamps are filed under the function's name"
        )
    module = getattr(func, "__module__", None)
    if not isinstance(module, str):
        return name
    return f"{module_name(module)}:{name}"


def module_name(module: str) -> str:
    """
    *module*, unless it is ``__main__``: then the module run with
    ``python -m``, or the running script's path relative to the project root
    (absolute if the script is outside it), or ``__main__`` when neither is
    known (an interactive session, ``python -c``, a notebook).
    """
    if module != MAIN:
        return module
    main = sys.modules.get(MAIN)
    spec = getattr(main, "__spec__", None)
    spec_name = getattr(spec, "name", None)
    if isinstance(spec_name, str) and spec_name != MAIN:
        return spec_name
    script = getattr(main, "__file__", None)
    if not isinstance(script, str) or not script:
        return MAIN
    path = os.path.abspath(script)
    root = _config.project_root()
    if path.startswith(os.path.join(root, "")):
        path = os.path.relpath(path, root)
    return path.replace(os.sep, "/")


def code_digest(code: CodeType) -> bytes:
    """
    A 20-byte digest of *code*: the same for the same code in every process,
    wherever in which file it was compiled.
    """
    seen = _digests.get(id(code))
    if seen is not None and seen[0] is code:
        return seen[1]
    parts: list[bytes] = []
    _code(code, parts)
    digest = blake2b(b"".join(parts), digest_size=20).digest()
    if len(_digests) >= _MAX_DIGESTS:
        _digests.clear()
    _digests[id(code)] = (code, digest)
    return digest


def _code(code: CodeType, out: list[bytes]) -> None:
    out.append(
        b"c%d,%d,%d,%d;"
        % (
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
        )
    )
    # co_code has no line numbers (those are in co_linetable), and its
    # specialised form is not what co_code returns.
    _bytes(code.co_code, out)
    _bytes(code.co_exceptiontable, out)
    _text(code.co_name, out)
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        out.append(b"%d:" % len(names))
        for name in names:
            _text(name, out)
    out.append(b"%d:" % len(code.co_consts))
    for constant in code.co_consts:
        _constant(constant, out)


def _bytes(data: bytes, out: list[bytes]) -> None:
    out.append(b"%d:" % len(data))
    out.append(data)


def _text(text: str, out: list[bytes]) -> None:
    _bytes(text.encode("utf-8", "surrogatepass"), out)


def _constant(value: object, out: list[bytes]) -> None:
    cls = type(value)
    if cls is _CodeType:
        out.append(b"C")
        _code(value, out)  # type: ignore[arg-type]
    elif cls is str:
        out.append(b"s")
        _text(value, out)  # type: ignore[arg-type]
    elif cls is bytes:
        out.append(b"b")
        _bytes(value, out)  # type: ignore[arg-type]
    elif cls is int or cls is bool:
        out.append(b"%c%d;" % (b"T" if cls is bool else b"i", value))  # type: ignore[str-format]
    elif cls is float or cls is complex:
        out.append(b"f")
        _text(repr(value), out)
    elif cls is tuple:
        items: tuple[object, ...] = value  # type: ignore[assignment]
        out.append(b"(%d:" % len(items))
        for item in items:
            _constant(item, out)
    elif cls is frozenset:
        # Iteration order of a set of strings changes with the hash seed.
        members = []
        for item in value:  # type: ignore[attr-defined]
            part: list[bytes] = []
            _constant(item, part)
            members.append(b"".join(part))
        members.sort()
        out.append(b">%d:" % len(members))
        out.extend(members)
    elif value is None:
        out.append(b"N")
    elif value is ...:
        out.append(b"E")
    else:  # pragma: no cover - no other constants in CPython's code objects
        out.append(b"?")
        _text(f"{cls.__module__}.{cls.__qualname__}:{value!r}", out)
