"""
numpy values keyed exactly: arrays by dtype, shape and contents.

Imported only when a value's type comes from numpy, so numpy is already
loaded by whoever made the value; nothing here imports it. Arrays that differ
in one element, in the last bit of a float, or in dtype, differ; equal arrays
built differently (a view, a copy, C or Fortran order) are equal. Every NaN is
the same NaN, as for Python floats.

This module knows numpy's types and nothing of keys, stamps or other values:
the encoder of the items of object arrays is handed in.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    EncodeItem = Callable[[object, list[bytes]], None]


def encode(value: Any, out: list[bytes], encode_item: EncodeItem) -> str | None:
    """
    Append the encoding of the numpy object *value* to *out*, or return why
    it has none.
    """
    np = sys.modules["numpy"]
    cls = type(value)
    if cls is np.ndarray:
        out.append(b"A")
        return _array(np, value, out, encode_item)
    if isinstance(value, np.generic):
        out.append(b"Z")
        return _array(np, np.asarray(value), out, encode_item)
    if isinstance(value, np.dtype):
        out.append(b"Y")
        _dtype(value, encode_item, out)
        return None
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    module = getattr(value, "__module__", None)
    if callable(value) and isinstance(name, str) and isinstance(module, str):
        # ufuncs and array functions, like built-ins: by name.
        out.append(b"U" + _text(f"{module}.{name}"))
        return None
    kind = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(value, np.ndarray):
        return (
            f"{kind} is a subclass of numpy.ndarray whose data alone may not "
            "be the whole value, and its repr shortens and rounds"
        )
    return f"{kind} is a numpy object jobstamps can't key exactly, and its repr shortens and rounds"


def _text(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"%d:%b" % (len(raw), raw)


def _dtype(dtype: Any, encode_item: EncodeItem, out: list[bytes]) -> None:
    # str names the kind, size and byte order; descr the fields of a
    # structured dtype, with their offsets' padding.
    encode_item(dtype.str, out)
    encode_item(dtype.descr, out)


def _array(
    np: Any, array: Any, out: list[bytes], encode_item: EncodeItem
) -> str | None:
    dtype = array.dtype
    _dtype(dtype, encode_item, out)
    encode_item(array.shape, out)
    if dtype.names is not None:
        # Field by field: the padding between fields holds whatever was there.
        for name in dtype.names:
            encode_item(name, out)
            refused = _array(np, array[name], out, encode_item)
            if refused is not None:
                return refused
        return None
    if dtype.hasobject:
        encode_item(list(array.flat), out)
        return None
    kind = dtype.kind
    if kind in "fc" and dtype.itemsize not in ((2, 4, 8) if kind == "f" else (8, 16)):
        return (
            f"a numpy array of {dtype} (long double) may hold padding bytes "
            "that differ between equal values"
        )
    data = np.ascontiguousarray(array)
    if kind == "b":
        # A bool is any non-zero byte (a view of other bytes may show 2).
        data = np.not_equal(data, False)
    elif kind == "f":
        data = _one_nan(np, data)
    elif kind == "c":
        nan = np.isnan(data.real) | np.isnan(data.imag)
        if nan.any():
            data = data.copy()
            data.real = _one_nan(np, data.real.copy())
            data.imag = _one_nan(np, data.imag.copy())
    raw = data.tobytes()
    out.append(b"%d:" % len(raw))
    out.append(raw)
    return None


def _one_nan(np: Any, data: Any) -> Any:
    """
    *data* with every NaN (whatever its sign and payload) the same NaN.
    """
    nan = np.isnan(data)
    if not nan.any():
        return data
    data = data.copy()
    data[nan] = np.nan
    return data
