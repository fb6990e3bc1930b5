"""
Hypothesis strategies for jobstamps' tests.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
)

# Values jobstamps must key canonically: nested builtin containers.
arguments = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), children, max_size=4),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
        st.sets(st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    ),
    max_leaves=12,
)

file_contents = st.binary(max_size=2048)

path_names = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x2FF),
    min_size=1,
    max_size=20,
)


# Small numpy arrays of the dtypes jobstamps keys by their bytes, in both
# byte orders, with NaNs, infinities and negative zeros among the floats.
array_dtypes = st.sampled_from(
    ["bool", "int8", "<i8", ">i8", "uint16", "<f4", "<f8", ">f8", "<c16", "<U3", "S2"]
).map(np.dtype)


def _elements(dtype: np.dtype) -> st.SearchStrategy[object]:
    elements = hnp.from_dtype(dtype)
    if dtype.kind == "f":
        return st.one_of(elements, st.just(float("nan")))  # NaN often
    if dtype.kind == "c":
        return st.one_of(elements, st.just(complex(float("nan"), 1.0)))
    return elements


small_arrays = array_dtypes.flatmap(
    lambda dtype: hnp.arrays(
        dtype=dtype,
        shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
        elements=_elements(dtype),
        fill=_elements(dtype),
    )
)

# Values jobstamps must key exactly: nested containers of scalars (NaN
# included) and small arrays; arrays are unhashable, so never keys or members.
hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.complex_numbers(max_magnitude=1e6),
    st.text(max_size=5),
    st.binary(max_size=5),
)
keyable_values = st.recursive(
    st.one_of(hashable_scalars, small_arrays),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(hashable_scalars, children, max_size=3),
        st.frozensets(hashable_scalars, max_size=3),
        st.sets(hashable_scalars, max_size=3),
    ),
    max_leaves=8,
)


def rebuilt(value: object) -> object:
    """
    An equal value built another way: dicts and sets filled in reverse
    order, arrays copied in Fortran order or taken as views.
    """
    if isinstance(value, np.ndarray):
        if value.ndim >= 2:
            return np.asfortranarray(value)
        if value.ndim == 1:
            return np.concatenate([value, value])[: len(value)]  # a view of a copy
        return value.copy()
    if isinstance(value, dict):
        return {k: rebuilt(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, set | frozenset):
        return type(value)(reversed(list(value)))
    if isinstance(value, list | tuple):
        return type(value)(rebuilt(v) for v in value)
    return value


_SAME_SIZE = {"b": "u1", "i": "f", "u": "f", "S": "u"}


def twin(value: object) -> object:
    """
    A value that only a close look tells from *value*: float arrays with the
    sign of their NaNs flipped (still equal), other arrays' bytes seen as
    another dtype of the same size (not equal).
    """
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if kind in "fc":
            flipped = value.copy()
            for part in (flipped,) if kind == "f" else (flipped.real, flipped.imag):
                nan = np.isnan(part)
                part[nan] = np.negative(part[nan])
            return flipped
        other = _SAME_SIZE.get(kind)
        if other is None or (value.dtype.itemsize == 1 and other == "f"):
            return value
        if other != "u1":
            other = f"{value.dtype.byteorder.replace('=', '<').replace('|', '<')}{other}{value.dtype.itemsize}"
        return value.view(other)
    if isinstance(value, dict):
        return {k: twin(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(twin(v) for v in value)
    return value




def pairs(values: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, object]]:
    """
    Pairs of *values*: unrelated, equal but built differently, or twins.
    """
    return st.one_of(
        st.tuples(values, values),
        values.map(lambda value: (value, rebuilt(value))),
        values.map(lambda value: (value, twin(value))),
    )
