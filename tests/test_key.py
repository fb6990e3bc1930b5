from __future__ import annotations

import inspect
import os
import pathlib
import pickle
import re
import subprocess
import sys
import threading
from unittest.mock import Mock

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstamps import StampKey, jobstamped
from jobstamps._key import KEY_FORMAT, Binder, KeyBuilder

SAMPLE = [1, "two", b"3", 4.5, None, (6, [7]), {"8": {9}}, frozenset({"x"})]


def sample_job(a, b):
    return [a, b]


def test_digest_is_the_same_in_another_process():
    """Digests don't depend on the process: no hash(), no addresses."""
    here = KeyBuilder(sample_job, version=3).digest((SAMPLE, "b"), {})
    code = (
        "from jobstamps._key import KeyBuilder\n"
        "from tests.test_key import sample_job\n"
        f"print(KeyBuilder(sample_job, version=3).digest(({SAMPLE!r}, 'b'), {{}}))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).parent.parent,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.strip()

    assert here == there


def test_key_format_is_the_second():
    """Keys are of the second format: stamps of jobstamps 1.0.0 miss once."""
    assert b"jobstamps-key/2\0" == KEY_FORMAT


def func_plain(a, b=2, *args, c, d=4, **kwargs):
    pass


def func_posonly(a, /, b, c=3):
    pass


def func_simple(path):
    pass


def func_defaults(a=1, b=2):
    pass


def func_kwonly(*, a, b=2):
    pass


def func_varkw(a, /, **kwargs):
    pass


CALLS = [
    (func_plain, (1,), {"c": 3}),
    (func_plain, (1, 2, 3, 4), {"c": 3, "e": 5}),
    (func_plain, (), {"a": 1, "c": 3}),
    (func_plain, (1,), {"b": 5, "c": 3, "d": 6}),
    (func_plain, (1,), {}),  # missing c
    (func_plain, (1,), {"a": 1, "c": 3}),  # a twice
    (func_posonly, (1, 2), {}),
    (func_posonly, (1,), {"b": 2, "c": 9}),
    (func_posonly, (), {"a": 1, "b": 2}),  # a is positional-only
    (func_simple, ("x",), {}),
    (func_simple, (), {"path": "x"}),
    (func_simple, ("x", "y"), {}),  # too many
    (func_simple, ("x",), {"other": 1}),  # unexpected keyword
    (func_defaults, (), {}),
    (func_defaults, (), {"b": 3}),
    (func_kwonly, (), {"a": 1}),
    (func_kwonly, (1,), {}),  # positional for keyword-only
    (func_varkw, (1,), {"a": 2}),  # positional-only name may go to **kwargs
]


@pytest.mark.parametrize(("func", "args", "kwargs"), CALLS)
def test_binder_agrees_with_inspect(func, args, kwargs):
    """The fast binder gives inspect's values, or inspect's TypeError."""
    signature = inspect.signature(func)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        with pytest.raises(TypeError, match=re.escape(str(e))):
            Binder(func).bind(args, kwargs)
        return
    bound.apply_defaults()

    assert tuple(bound.arguments.values()) == Binder(func).bind(args, kwargs)
    assert tuple(signature.parameters) == Binder(func).names


def test_equivalent_calls_share_a_key():
    """f(1, b=2), f(1, 2), f(1) and f(a=1) are one call when b defaults to 2."""

    def f(a, b=2):
        pass

    keys = KeyBuilder(f, None)
    digests = {
        keys.digest((1,), {"b": 2}),
        keys.digest((1, 2), {}),
        keys.digest((1,), {}),
        keys.digest((), {"a": 1}),
    }

    assert 1 == len(digests)
    assert keys.digest((1, 3), {}) not in digests


@given(st.lists(st.integers(), max_size=3), st.dictionaries(st.sampled_from("xyz"), st.integers()))
def test_keyword_order_does_not_matter(args, kwargs):
    """**kwargs given in another order are the same call."""

    def f(*args, **kwargs):
        pass

    keys = KeyBuilder(f, None)
    reordered = dict(reversed(list(kwargs.items())))

    assert keys.digest(tuple(args), kwargs) == keys.digest(tuple(args), reordered)


def test_identity_is_module_and_qualname():
    """Functions named alike in different modules or classes get different keys."""

    def make(module, qualname):
        def f(x):
            pass

        f.__module__ = module
        f.__qualname__ = qualname
        return KeyBuilder(f, None).digest((1,), {})

    assert make("a", "job") != make("b", "job")
    assert make("a", "job") != make("a", "C.job")
    assert make("a", "job") == make("a", "job")


def test_version_is_part_of_the_key():
    """Changing version retires old stamps."""

    def f(x):
        pass

    assert KeyBuilder(f, 1).digest((1,), {}) != KeyBuilder(f, 2).digest((1,), {})


def test_callables_with_only_a_name():
    """A mock with a __name__ is named by it, and two such mocks share keys."""
    first = KeyBuilder(Mock(__name__="job"), None)
    second = KeyBuilder(Mock(__name__="job"), None)

    assert first.digest((1,), {}) == second.digest((1,), {})
    assert first.digest((1,), {}) != first.digest((2,), {})


def test_nameless_callables_are_a_clear_error():
    """A callable with no name at all can't be filed under one."""
    import functools

    with pytest.raises(TypeError, match="neither __qualname__ nor __name__"):
        KeyBuilder(functools.partial(print, 1), None)


def test_unkeyable_argument_names_its_parameter():
    """The TypeError for an unkeyable argument names the parameter."""

    def f(path, options):
        pass

    with pytest.raises(TypeError, match="'options'"):
        KeyBuilder(f, None).digest(("a",), {"options": object()})


class TestStampKey:
    def make(self):
        def f(a, b=2):
            pass

        return KeyBuilder(f, "v1").key((1,), {})

    def test_fields(self):
        """A key shows the function, version and bound arguments."""
        key = self.make()

        assert key.function.endswith("TestStampKey.make.<locals>.f")
        assert "v1" == key.version
        assert key.arguments == (("a", 1), ("b", 2))
        assert 40 == len(key.digest)

    def test_immutable_hashable_picklable(self):
        """Keys are frozen values: equal, hashable, picklable."""
        key = self.make()

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            key.digest = "x"
        assert key == self.make()
        assert {key} == {self.make()}
        assert key == pickle.loads(pickle.dumps(key))
        assert "StampKey(function=" in repr(key)
        assert isinstance(key, StampKey)

    def test_is_an_attrs_class(self):
        """StampKey is an attrs class: evolve and asdict work on it."""
        key = self.make()

        assert attrs.has(StampKey)
        assert "other" == attrs.evolve(key, digest="other").digest
        assert {
            "function": key.function,
            "version": "v1",
            "arguments": (("a", 1), ("b", 2)),
            "digest": key.digest,
            "closure": (),
            "environment": (),
        } == attrs.asdict(key, recurse=False)

    def test_equal_by_function_and_digest(self):
        """Keys with unhashable arguments are still hashable: equality is function and digest."""

        def f(items):
            pass

        key = KeyBuilder(f, None).key(([1, 2],), {})

        assert {key} == {KeyBuilder(f, None).key(([1, 2],), {})}
        assert key != KeyBuilder(f, None).key(([2, 1],), {})


@given(
    st.one_of(st.integers(), st.text()),
    st.one_of(st.integers(), st.text(), st.binary(), st.none()),
)
def test_positional_fast_path_gives_the_general_digest(a, b):
    """The all-positional str/int shortcut digests exactly as encode() does."""

    def f(a, b):
        pass

    keys = KeyBuilder(f, "v", b"context")

    assert keys.key((a, b), {}).digest == keys.digest((a, b), {})
    assert keys.digest((a, b), {}) == keys.digest((a,), {"b": b})


class TestIgnore:
    def test_ignored_parameter_shares_the_stamp(self):
        """f(1, verbose=True) hits the stamp of f(1, verbose=False) under ignore=("verbose",)."""
        runs = []

        @jobstamped(ignore=("verbose", "runs"))
        def f(x, verbose=False):
            runs.append((x, verbose))
            return x * 2

        assert 2 == f(1, verbose=False)
        assert 2 == f(1, verbose=True)
        assert 2 == f(1, True)
        assert [(1, False)] == runs
        assert (("x", 1),) == f.key(1, verbose=True).arguments

    def test_ignored_star_parameters_leave_out_all_they_collect(self):
        """Naming *args or **kwargs in ignore= leaves out everything it collects."""

        def f(path, *flags, **options):
            pass

        keys = KeyBuilder(f, None, ignore=("flags", "options"))

        assert keys.digest(("a",), {}) == keys.digest(("a", 1, 2), {"x": 3})
        assert keys.digest(("a",), {}) != keys.digest(("b",), {})

    def test_ignored_parameter_may_hold_anything(self):
        """An ignored parameter is never keyed, so it may be a lock or a callback."""

        def f(x, lock, progress=None):
            pass

        keys = KeyBuilder(f, None, ignore=("lock", "progress"))

        assert keys.digest((1, threading.Lock()), {"progress": print}) == keys.digest((1, None), {})

    def test_ignoring_changes_the_key(self):
        """A function keyed with and without ignore= has different stamps."""

        def f(x, verbose=False):
            pass

        assert KeyBuilder(f, None).digest((1,), {}) != KeyBuilder(f, None, ignore=("verbose",)).digest((1,), {})

    def test_unknown_name_is_a_type_error_at_decoration(self):
        """A name that is neither a parameter nor a closure variable is refused at once."""
        scale = 2

        def f(x, verbose=False):
            return x * scale

        with pytest.raises(TypeError, match=r"ignore names 'verbos', which is neither a parameter nor a closure variable of .*f \(parameters: x, verbose; closure variables: scale\)"):
            jobstamped(ignore=("verbos",))(f)

    def test_a_single_name_must_be_wrapped(self):
        """ignore="verbose" is refused with the fix: a tuple."""

        def f(x, verbose=False):
            pass

        with pytest.raises(TypeError, match=r"ignore=\('verbose',\)"):
            jobstamped(ignore="verbose")(f)
