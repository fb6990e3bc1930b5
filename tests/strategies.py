"""
Hypothesis strategies for jobstamps' tests.
"""

from __future__ import annotations

from hypothesis import strategies as st

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


# Values jobstamps must key exactly: nested containers of scalars, NaN
# included.
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
    hashable_scalars,
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
    An equal value built another way: dicts and sets filled in reverse order.
    """
    if isinstance(value, dict):
        return {k: rebuilt(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, set | frozenset):
        return type(value)(reversed(list(value)))
    if isinstance(value, list | tuple):
        return type(value)(rebuilt(v) for v in value)
    return value


def pairs(values: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, object]]:
    """
    Pairs of *values*: unrelated, or equal but built differently.
    """
    return st.one_of(
        st.tuples(values, values),
        values.map(lambda value: (value, rebuilt(value))),
    )
