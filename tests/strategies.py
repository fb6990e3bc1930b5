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

fingerprints = st.one_of(
    st.none(),
    st.tuples(
        st.integers(0, 2**63),
        st.integers(0, 2**40),
        st.one_of(st.none(), st.text()),
        st.integers(0, 2**63),
    ),
)


def _stamps():
    from jobstamps._stampfile import Stamp

    return st.builds(
        Stamp,
        st.integers(0, 2**63),
        st.integers(0, 2**63),
        st.lists(st.tuples(st.text(), fingerprints), max_size=5).map(tuple),
        st.lists(st.text(), max_size=3).map(tuple),
        st.binary(max_size=512),
    )


# Stamp records as a run could write them.
stamps = st.deferred(_stamps)
