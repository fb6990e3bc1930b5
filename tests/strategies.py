"""
Hypothesis strategies for jobstamps' tests, and helpers for the stamps they
make.
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


# Parameter names of generated signatures (never "args" or "kwargs", the
# names of their * and ** parameters).
_PARAMETER_NAMES = ("a", "b", "c", "d", "e", "f")


@st.composite
def functions(draw):
    """
    Plain functions with generated signatures: positional-only,
    positional-or-keyword and keyword-only parameters, with and without
    defaults, with or without ``*args`` and ``**kwargs``. Each returns the
    values its parameters were bound to, in order: Python's own binding.
    """
    names = draw(st.lists(st.sampled_from(_PARAMETER_NAMES), unique=True, max_size=5))
    first = draw(st.integers(0, len(names)))
    second = draw(st.integers(first, len(names)))
    posonly, positional, kwonly = names[:first], names[first:second], names[second:]
    varargs, varkw = draw(st.booleans()), draw(st.booleans())
    defaulted = draw(st.integers(0, first + len(positional)))  # a suffix
    parameters = []
    for i, name in enumerate(posonly + positional):
        has_default = i >= first + len(positional) - defaulted
        parameters.append(f"{name}={100 + i}" if has_default else name)
        if posonly and i == first - 1:
            parameters.append("/")
    if varargs:
        parameters.append("*args")
    elif kwonly:
        parameters.append("*")
    for i, name in enumerate(kwonly):
        with_default = draw(st.booleans())
        parameters.append(f"{name}={200 + i}" if with_default else name)
    if varkw:
        parameters.append("**kwargs")
    namespace: dict[str, object] = {}
    bound = [p.lstrip("*").partition("=")[0] for p in parameters if p not in ("/", "*")]
    returned = "".join(f"{name}, " for name in bound)
    source = f"def generated({', '.join(parameters)}):\n    return ({returned})\n"
    exec(source, namespace)
    return namespace["generated"]


@st.composite
def calls(draw, func):
    """
    ``(args, kwargs)`` for *func*: about half fit its signature, the others
    are anything (too many or too few arguments, unknown names, a
    positional-only name or an argument given twice), so some must fail.
    """
    import inspect

    parameters = list(inspect.signature(func).parameters.values())
    if draw(st.booleans()):
        return draw(_fitting_call(parameters))
    count = draw(st.integers(0, len(parameters) + 2))
    args = tuple(f"p{i}" for i in range(count))
    names = [p.name for p in parameters] + ["zz"]
    keywords = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
    return args, {name: f"k{name}" for name in keywords}


@st.composite
def _fitting_call(draw, parameters):
    import inspect

    kind = inspect.Parameter
    args: list[object] = []
    kwargs: dict[str, object] = {}
    positional = True  # still giving arguments by position
    for p in parameters:
        required = p.default is kind.empty
        if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD):
            if (
                positional
                and (required or draw(st.booleans()))
                and (p.kind == kind.POSITIONAL_ONLY or draw(st.booleans()))
            ):
                args.append(f"p{p.name}")
                continue
            positional = positional and p.kind == kind.POSITIONAL_ONLY and not required
            if p.kind == kind.POSITIONAL_OR_KEYWORD and (required or draw(st.booleans())):
                kwargs[p.name] = f"k{p.name}"
                positional = False
        elif p.kind == kind.VAR_POSITIONAL and positional:
            args.extend(f"x{i}" for i in range(draw(st.integers(0, 2))))
        elif p.kind == kind.KEYWORD_ONLY and (required or draw(st.booleans())):
            kwargs[p.name] = f"k{p.name}"
        elif p.kind == kind.VAR_KEYWORD:
            # Extra names, and maybe those of positional-only parameters.
            extra = [q.name for q in parameters if q.kind == kind.POSITIONAL_ONLY]
            for name in draw(st.lists(st.sampled_from([*extra, "zz"]), unique=True, max_size=2)):
                kwargs.setdefault(name, f"k{name}")
    return tuple(args), kwargs


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


def same(a, b):
    """
    Whether two stamps hold the same record (results compared as bytes).
    """
    return (a.created_ns, a.duration_ns, a.dependencies, a.outputs, bytes(a.result)) == (
        b.created_ns,
        b.duration_ns,
        b.dependencies,
        b.outputs,
        bytes(b.result),
    )


def sample():
    """
    A small stamp with one dependency and one output.
    """
    from jobstamps._stampfile import Stamp

    return Stamp(1, 5, (("a", (1, 2, "d", 3)),), ("out",), b"result")
