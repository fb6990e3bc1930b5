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
