"""
The canonical encoding of values: exact, or refused with advice that fits.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import enum
import functools
import io
import math
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import threading

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobstamps
from jobstamps import jobstamped, register_key
from jobstamps._encode import encode
from jobstamps._key import KeyBuilder, function_name

from .strategies import arguments, keyable_values, pairs, small_arrays


def encoded(value):
    parts = []
    encode(value, parts, "x")
    return b"".join(parts)


def typed(value):
    """
    A structure equal for two values exactly when jobstamps must key them
    alike: same types all the way down, same values, order-free containers.
    """
    cls = type(value)
    if cls is dict:
        return (cls, frozenset((typed(k), typed(v)) for k, v in value.items()))
    if cls in (set, frozenset):
        return (cls, frozenset(typed(v) for v in value))
    if cls in (list, tuple):
        return (cls, tuple(typed(v) for v in value))
    if cls is float or cls is complex:
        return (cls, repr(value))  # every NaN alike; -0.0 is not 0.0
    if cls is np.ndarray:
        items = tuple(typed(v) for v in value.ravel().tolist())
        return (cls, value.dtype.str, value.shape, items)
    return (cls, value)


class TestEncoding:
    @given(arguments)
    def test_deterministic(self, value):
        """A value and a deep copy of it encode identically."""
        assert encoded(value) == encoded(copy.deepcopy(value))

    @given(arguments, arguments)
    def test_equal_exactly_when_same_typed_value(self, a, b):
        """Two values share an encoding exactly when they are the same typed value."""
        assert (typed(a) == typed(b)) == (encoded(a) == encoded(b))

    @given(st.dictionaries(st.text(max_size=4), st.integers(), min_size=2))
    def test_dict_order_does_not_matter(self, mapping):
        """Dicts with the same items in another order encode alike."""
        reordered = dict(reversed(list(mapping.items())))

        assert encoded(mapping) == encoded(reordered)

    def test_similar_values_of_other_types_differ(self):
        """1, 1.0, True, "1", b"1", (1,) and [1] are all different keys."""
        values = [1, 1.0, True, "1", b"1", bytearray(b"1"), (1,), [1], {1}, frozenset({1})]

        assert len({encoded(v) for v in values}) == len(values)

    def test_boundaries_are_kept(self):
        """("ab", "c") and ("a", "bc") differ: lengths are part of the encoding."""
        assert encoded(("ab", "c")) != encoded(("a", "bc"))

    def test_attrs_and_dataclasses_encode_by_fields(self):
        """attrs classes and dataclasses are keyed by their field values."""

        @attrs.frozen
        class A:
            x: int
            y: list[int]

        @dataclasses.dataclass
        class D:
            x: int

        assert encoded(A(1, [2])) == encoded(A(1, [2]))
        assert encoded(A(1, [2])) != encoded(A(1, [3]))
        assert encoded(D(1)) == encoded(D(1))
        assert encoded(D(1)) != encoded(D(2))

    def test_named_tuples_enums_and_paths(self):
        """Named tuples, enum members and paths have stable encodings."""
        Point = collections.namedtuple("Point", "x y")

        class Color(enum.Enum):
            RED = 1
            BLUE = 2

        assert encoded(Point(1, 2)) != encoded((1, 2))
        assert encoded(Color.RED) != encoded(Color.BLUE)
        assert encoded(pathlib.Path("a/b")) == encoded(pathlib.Path("a/b"))
        assert encoded(pathlib.Path("a")) != encoded("a")

    def test_custom_repr_is_the_fallback(self):
        """Objects with their own __repr__ are keyed by it, as in 0.0.20."""

        class Version:
            def __init__(self, text):
                self.text = text

            def __repr__(self):
                return f"Version({self.text!r})"

        assert encoded(Version("1")) == encoded(Version("1"))
        assert encoded(Version("1")) != encoded(Version("2"))

    def test_default_repr_is_a_clear_type_error(self):
        """An object printed with its memory address can't be keyed."""

        class Opaque:
            pass

        with pytest.raises(TypeError, match=r"argument 'x'.*memory address"):
            encoded(Opaque())

    def test_bound_methods_of_opaque_objects_are_rejected(self):
        """A bound method is keyed with its object, so an opaque object's can't be."""

        class Opaque:
            def method(self):
                pass

        with pytest.raises(TypeError, match=r"argument 'x' \(the object of the bound method .*Opaque.method\)"):
            encoded(Opaque().method)

    def test_module_level_functions_and_classes_are_keyed_by_name(self):
        """Functions and classes with a stable import path are keyed by it."""
        assert encoded(len) == encoded(len)
        assert encoded(pathlib.Path) != encoded(pathlib.PurePath)
        assert encoded(function_name) != encoded(encode)


class TestRefused:
    """
    Values whose repr would lie about them are a TypeError naming the
    parameter, with advice for the case.
    """

    def test_open_file(self, tmp_path):
        """An open file is refused, and the advice is to pass its path."""
        (tmp_path / "x").write_text("x")
        with open(tmp_path / "x") as text, open(tmp_path / "x", "rb") as binary:
            for file in (text, binary, io.StringIO("x"), io.BytesIO(b"x")):
                with pytest.raises(TypeError, match=r"argument 'x': an open file .*Pass its path instead"):
                    encoded(file)

    def test_temporary_file(self):
        """A NamedTemporaryFile (a wrapper around a file) is refused as a file."""
        with tempfile.NamedTemporaryFile() as file, pytest.raises(TypeError, match="an open file"):
            encoded(file)

    def test_generators_and_iterators(self):
        """Generators and iterators are refused: reading them uses them up."""
        values = [
            (i for i in range(3)),
            iter([1, 2]),
            map(str, [1]),
            zip([1], [2], strict=True),
            enumerate("ab"),
            reversed([1, 2]),
            iter({"a": 1}.items()),
        ]
        for value in values:
            with pytest.raises(TypeError, match=r"argument 'x': (a generator|an iterator).*Pass a list or tuple"):
                encoded(value)

    def test_async_generators_and_coroutines(self):
        """Coroutines and async generators are refused, with advice of their own."""

        async def coroutine():
            return 1

        async def agen():
            yield 1

        running = coroutine()
        try:
            with pytest.raises(TypeError, match=r"a coroutine has no value before it runs\. Await it"):
                encoded(running)
        finally:
            running.close()
        with pytest.raises(TypeError, match="generator"):
            encoded(agen())

    def test_locks_threads_and_processes(self):
        """Locks, threads, events and processes have no value; the advice is ignore=."""
        thread = threading.Thread(target=print)
        values = [
            threading.Lock(),
            threading.RLock(),
            threading.Event(),
            threading.Condition(),
            threading.Semaphore(),
            thread,
            asyncio.Lock(),
        ]
        for value in values:
            with pytest.raises(TypeError, match=r"has no value to key\. If the result does not depend on it, leave it out of the key with ignore=\('x',\)"):
                encoded(value)

    def test_a_thread_is_refused_although_its_repr_has_no_address(self):
        """A Thread's repr shows no address, and it is still refused."""
        thread = threading.Thread(target=print, name="worker")

        assert " at 0x" not in repr(thread)
        with pytest.raises(TypeError, match="a thread"):
            encoded(thread)

    def test_sockets(self):
        """A socket is refused, though its repr shows no address."""
        with socket.socket() as sock, pytest.raises(TypeError, match="a socket"):
            encoded(sock)

    def test_running_process(self):
        """A Popen object is refused."""
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        try:
            with pytest.raises(TypeError, match="a process"):
                encoded(process)
        finally:
            process.wait()

    def test_refused_inside_a_container_names_the_parameter(self):
        """A lock deep inside a list and a dict is refused, naming the parameter."""

        def f(jobs, options):
            pass

        with pytest.raises(TypeError, match=r"argument 'options': a lock"):
            KeyBuilder(f, None).digest(([1],), {"options": {"a": [threading.Lock()]}})

    def test_refused_field_says_which(self):
        """A dataclass holding a lock is refused, naming the field."""

        @dataclasses.dataclass
        class Config:
            name: str
            lock: object

        with pytest.raises(TypeError, match=r"argument 'x' \(field 'lock' of .*Config\): a lock"):
            encoded(Config("a", threading.Lock()))

    def test_default_repr_advice_is_about_classes(self):
        """Only an object printed with its address gets the advice to write a __repr__."""

        class Opaque:
            pass

        with pytest.raises(TypeError, match=r"memory address.*Give Opaque a __repr__.*register_key\(Opaque, func\)"):
            encoded(Opaque())
        with pytest.raises(TypeError) as refused:
            encoded(iter([]))
        assert "__repr__" not in str(refused.value)

    def test_pandas_objects_are_never_keyed_by_repr(self):
        """A pandas object (told by its type's module) is refused, with register_key as the advice."""
        DataFrame = type("DataFrame", (), {"__module__": "pandas.core.frame", "__repr__": lambda self: "   a\n0  1"})

        with pytest.raises(TypeError, match=r"pandas object.*shortens and rounds.*register_key\(DataFrame, func\)"):
            encoded(DataFrame())


class TestCallables:
    """
    Callables and modules as values: by what they are, never by id().
    """

    def test_named_function(self):
        """A module-level function works as an argument, keyed by name and code."""
        assert encoded(function_name) == encoded(function_name)
        assert encoded(function_name) != encoded(encode)

    def test_lambdas_differ_by_code(self):
        """Two lambdas that compute differently have different keys; the same lambda has one."""
        add = lambda x: x + 1  # noqa: E731
        mul = lambda x: x * 100  # noqa: E731

        assert encoded(add) != encoded(mul)
        assert encoded(add) == encoded(add)

    def test_lambdas_differ_by_defaults(self):
        """Lambdas with the same code and other defaults differ."""
        assert encoded(lambda x=1: x) != encoded(lambda x=2: x)

    def test_closures_of_one_factory_differ_by_what_they_close_over(self):
        """make(1) and make(1000) differ; two make(1) are alike."""

        def make(n):
            return lambda x: x + n

        assert encoded(make(1)) != encoded(make(1000))
        assert encoded(make(1)) == encoded(make(1))

    def test_function_closing_over_a_lock_names_it(self):
        """A function value whose closure holds a lock is refused, saying where."""
        lock = threading.Lock()

        def guarded(x):
            with lock:
                return x

        with pytest.raises(TypeError, match=r"argument 'x' \(closure variable 'lock' of .*guarded\): a lock"):
            encoded(guarded)

    def test_function_that_refers_to_itself(self):
        """A recursive local function (its own closure holds it) is keyed."""

        def countdown(n):
            return n if n == 0 else countdown(n - 1)

        assert encoded(countdown) == encoded(countdown)

    def test_partials(self):
        """A partial is keyed by its function, arguments and keywords."""
        assert encoded(functools.partial(int, base=2)) == encoded(functools.partial(int, base=2))
        assert encoded(functools.partial(int, base=2)) != encoded(functools.partial(int, base=8))
        assert encoded(functools.partial(max, 1)) != encoded(functools.partial(max, 2))
        assert encoded(functools.partial(max, 1)) != encoded(functools.partial(min, 1))

    def test_builtins_and_their_bound_methods(self):
        """Built-ins by name; a built-in bound method with its object."""
        assert encoded(len) != encoded(sorted)
        assert encoded("a".upper) != encoded("b".upper)
        assert encoded([1].append) == encoded([1].append)
        assert encoded(str.upper) != encoded(str.lower)
        assert encoded(math.sqrt) != encoded(math.floor)

    def test_bound_methods_are_keyed_with_their_object(self):
        """A bound method is its function and its object (keyed like an argument)."""

        @dataclasses.dataclass
        class Scale:
            factor: int

            def apply(self, x):
                return x * self.factor

        assert encoded(Scale(2).apply) == encoded(Scale(2).apply)
        assert encoded(Scale(2).apply) != encoded(Scale(3).apply)

    def test_classes_and_modules(self):
        """A class by module and qualified name, a module by its name."""
        assert encoded(pathlib.Path) != encoded(pathlib.PurePath)
        assert encoded(os) == encoded(os)
        assert encoded(os) != encoded(sys)
        assert encoded(os) != encoded("os")

    def test_lru_cached_function_is_its_function(self):
        """An lru_cache'd function is keyed as the function it memoises."""
        assert encoded(functools.lru_cache(function_name)) == encoded(functools.lru_cache(function_name))
        assert encoded(functools.lru_cache(function_name)) != encoded(functools.lru_cache(encode))

    def test_stamped_function_as_a_value(self):
        """A stamped function passed on is keyed as the function it stamps."""
        stamped = jobstamped(function_name)

        assert encoded(stamped) == encoded(jobstamped(function_name))
        assert encoded(stamped) != encoded(jobstamped(encode))

    def test_callables_never_encode_like_data(self):
        """A built-in, a bound built-in and a function never share a key with bytes naming them."""
        assert encoded(len) != encoded(bytearray(b"builtins.len"))
        assert encoded("a".upper) != encoded([b"str.upper", "a"][0])
        assert encoded([False, "x"]) != encoded([function_name, "x"])

    def test_function_key_is_the_same_in_another_process(self):
        """A function's key holds no id(): another process computes the same bytes."""
        code = (
            "from jobstamps._encode import encode\n"
            "from jobstamps._key import function_name\n"
            "parts = []\n"
            "encode(function_name, parts, 'x')\n"
            "print(b''.join(parts).hex())\n"
        )
        there = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "4321"},
        ).stdout.strip()

        assert encoded(function_name).hex() == there


class TestRegisterKey:
    def test_registered_type_is_keyed_by_the_function(self):
        """register_key(cls, func) keys instances of cls by func(value)."""

        class Matrix:
            def __init__(self, rows):
                self.rows = rows

        register_key(Matrix, lambda m: m.rows)

        assert encoded(Matrix([[1, 2]])) == encoded(Matrix([[1, 2]]))
        assert encoded(Matrix([[1, 2]])) != encoded(Matrix([[1, 3]]))
        assert encoded(Matrix([[1, 2]])) != encoded([[1, 2]])

    def test_subclasses_are_keyed_by_it_too_and_by_their_class(self):
        """Subclasses of a registered class use its function, keyed with their own class."""

        class Base:
            def __init__(self, value):
                self.value = value

        class Derived(Base):
            pass

        register_key(Base, lambda b: b.value)

        assert encoded(Derived(1)) == encoded(Derived(1))
        assert encoded(Derived(1)) != encoded(Base(1))

    def test_registered_function_wins_over_the_repr(self):
        """A registered function is used even for a class with a repr of its own."""

        class Rounded:
            def __init__(self, value):
                self.value = value

            def __repr__(self):
                return f"Rounded({self.value:.2f})"

        assert encoded(Rounded(0.123)) == encoded(Rounded(0.124))
        register_key(Rounded, lambda r: r.value)
        assert encoded(Rounded(0.123)) != encoded(Rounded(0.124))

    def test_function_returning_its_own_type_is_refused(self):
        """A function that returns a value of the registered type again is a clear error."""

        class Loop:
            pass

        register_key(Loop, lambda value: Loop())

        with pytest.raises(TypeError, match=r"returned a .*Loop again"):
            encoded(Loop())

    def test_bad_registrations(self):
        """register_key takes a class and a callable."""
        with pytest.raises(TypeError, match="not a class"):
            register_key("str", len)
        with pytest.raises(TypeError, match="not callable"):
            register_key(str, "len")

    def test_it_is_public(self):
        """register_key is exported by jobstamps."""
        assert "register_key" in jobstamps.__all__
        assert jobstamps.register_key is register_key


class TestContainers:
    def test_subclasses_of_builtin_containers_are_keyed_by_contents(self):
        """OrderedDict, defaultdict, Counter, deque and named lists: by class and contents."""
        assert encoded(collections.OrderedDict(a=1, b=2)) != encoded(collections.OrderedDict(b=2, a=1))
        assert encoded(collections.OrderedDict(a=1)) != encoded({"a": 1})
        assert encoded(collections.Counter("aab")) == encoded(collections.Counter("aba"))
        assert encoded(collections.defaultdict(list, a=[1])) != encoded(collections.defaultdict(set, a=[1]))
        assert encoded(collections.deque([1, 2], maxlen=3)) != encoded(collections.deque([1, 2]))

    def test_arrays_inside_containers_are_keyed_exactly(self):
        """An array in an OrderedDict or a deque is keyed exactly, not through the container's repr."""
        big = np.arange(10_000)
        changed = big.copy()
        changed[5000] = -1

        assert encoded(collections.OrderedDict(a=big)) != encoded(collections.OrderedDict(a=changed))
        assert encoded(collections.deque([big])) != encoded(collections.deque([changed]))

    def test_memoryview_and_patterns(self):
        """memoryviews by format, shape and bytes; regular expressions by pattern and flags."""
        long = "a" * 300

        assert encoded(memoryview(b"ab")) != encoded(memoryview(b"ac"))
        assert encoded(memoryview(b"ab")) != encoded(b"ab")
        assert encoded(re.compile(long + "b")) != encoded(re.compile(long + "c"))
        assert encoded(re.compile("a", re.I)) != encoded(re.compile("a"))


def _typed_equal(a, b):
    return typed(a) == typed(b)


@given(pairs(keyable_values))
def test_calls_share_a_key_exactly_when_their_arguments_are_equal(pair):
    """
    Two calls share a key exactly when their arguments are equal: the same
    types throughout (1, 1.0 and True differ, as do arrays of two dtypes),
    equal values (NaN equal to itself), dict and set order ignored.
    """
    first, second = pair

    def f(x):
        pass

    keys = KeyBuilder(f, None)

    assert _typed_equal(first, second) == (keys.digest((first,), {}) == keys.digest((second,), {}))


@settings(max_examples=300)
@given(pairs(small_arrays))
def test_arrays_share_a_key_exactly_when_equal(pair):
    """
    Two arrays share a key exactly when they have the same dtype and shape
    and equal elements, NaN equal to NaN whatever its sign or payload.
    """
    first, second = pair

    assert _typed_equal(first, second) == (encoded(first) == encoded(second))
