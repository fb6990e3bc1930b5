"""
The hand-written binder of jobstamps._key against inspect, over generated
signatures and calls.
"""

from __future__ import annotations

import inspect

from hypothesis import given
from hypothesis import strategies as st

from jobstamps._key import Binder

from .strategies import calls, functions


def _outcome(bind):
    try:
        return bind(), None
    except TypeError as e:
        return None, e


@given(st.data())
def test_binder_agrees_with_inspect_on_generated_signatures(data):
    """
    For any signature and call, Binder gives what inspect's bind and
    apply_defaults give, or raises the TypeError inspect raises.

    The one exception is a bug of inspect's, fixed in Python 3.13 and in
    later 3.12 releases: it refuses a keyword with the name of a
    positional-only parameter that has a default even when **kwargs takes
    it, a call Python accepts; there Binder binds as Python does.
    """
    func = data.draw(functions())
    args, kwargs = data.draw(calls(func))
    signature = inspect.signature(func)

    def by_inspect():
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments.values())

    expected, refused = _outcome(by_inspect)
    actual, error = _outcome(lambda: Binder(func).bind(args, kwargs))
    if refused is not None and error is None:
        # inspect's gap: Python itself must accept the call, bound the same.
        assert "positional only" in str(refused)
        expected, refused = _outcome(lambda: func(*args, **kwargs))

    assert tuple(signature.parameters) == Binder(func).names
    assert expected == actual
    assert (type(refused), str(refused)) == (type(error), str(error))


def test_binder_binds_as_python_where_inspect_refuses():
    """A positional-only name with a default may go to **kwargs, as Python allows."""

    def f(a=1, /, **kwargs):
        return a, kwargs

    assert (1, {"a": 2}) == Binder(f).bind((), {"a": 2})
    assert (1, {"a": 2}) == f(a=2)


def test_generated_signatures_take_the_binders_own_path():
    """Plain functions, as generated, are bound by Binder itself, not through inspect."""

    def plain(a, /, b=1, *args, c, **kwargs):
        pass

    assert Binder(plain)._signature is None
