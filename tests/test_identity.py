"""
A stamped function's identity: its code, and the values it closes over, read
at every call.
"""

from __future__ import annotations

import threading

import pytest

from jobstamps import jobstamped
from jobstamps._identity import Identity
from jobstamps._key import KeyBuilder


def test_lambdas_in_one_module_do_not_share_stamps():
    """Two stamped lambdas of one module return their own results."""
    add = jobstamped(lambda x: x + 1)
    scale = jobstamped(lambda x: x * 100)

    assert (6, 500) == (add(5), scale(5))


def test_closures_of_one_factory_do_not_share_stamps():
    """make(1) and make(1000) each return a stamped closure with its own results."""

    def make(n):
        @jobstamped
        def shifted(x):
            return x + n

        return shifted

    assert (6, 1005, 6) == (make(1)(5), make(1000)(5), make(1)(5))


def test_rebound_nonlocal_changes_the_key():
    """A closure variable rebound after decoration is keyed with its new value."""
    runs = []
    factor = 2

    @jobstamped(ignore=("runs",))
    def scaled(x):
        runs.append(x)
        return x * factor

    assert 6 == scaled(3)
    factor = 10
    assert 30 == scaled(3)
    factor = 2
    assert 6 == scaled(3)
    assert [3, 3] == runs


def test_mutated_captured_list_changes_the_key():
    """A captured list mutated after a call is keyed by its new contents."""
    allowed = ["a"]

    @jobstamped
    def check(word):
        return word in allowed

    assert check("b") is False
    allowed.append("b")
    assert check("b") is True


def test_function_without_cells_reads_nothing_per_call():
    """A function that closes over nothing has nothing to read at each call."""

    def plain(x):
        return x

    assert not Identity(plain).changes
    assert not KeyBuilder(plain, None)._live


def test_self_calling_stamped_closure():
    """A stamped closure that calls itself (its cell empty at decoration) works and hits."""
    runs = []

    def make(offset):
        @jobstamped(ignore=("runs",))
        def fib(n):
            runs.append(n)
            return n + offset if n < 2 else fib(n - 1) + fib(n - 2)

        return fib

    fib = make(0)

    assert 55 == fib(10)
    assert 11 == len(runs)
    assert 55 == make(0)(10)
    assert 11 == len(runs)
    assert (34, 89) == (make(0)(9), make(1)(9))


def test_class_cell_of_a_method_using_super():
    """A stamped method using super() (its __class__ cell empty at decoration) works and hits."""
    runs = []

    class Base:
        def area(self, side):
            return side * side

    class Square(Base):
        def __repr__(self):
            return "Square()"

        @jobstamped(ignore=("runs",))
        def area(self, side):
            runs.append(side)
            return super().area(side)

    assert 9 == Square().area(3)
    assert 9 == Square().area(3)
    assert [3] == runs
    assert ("__class__", Square) in Square().area.key(3).closure


def test_unkeyable_closure_value_is_refused_at_decoration():
    """A closure over a lock is a TypeError at decoration, naming the variable and ignore=."""
    lock = threading.Lock()

    def guarded(x):
        with lock:
            return x

    with pytest.raises(TypeError, match=r"closure variable 'lock' of .*guarded: a lock .*ignore=\('lock',\)"):
        jobstamped(guarded)


def test_closure_value_that_becomes_unkeyable_is_refused_at_the_call():
    """A closure variable rebound to a client object is a TypeError at the call."""

    class Client:
        pass

    client = None

    @jobstamped
    def fetch(x):
        return (client, x)

    assert (None, 1) == fetch(1)
    client = Client()
    with pytest.raises(TypeError, match=r"closure variable 'client' of .*fetch: .*memory address.*ignore=\('client',\)"):
        fetch(1)


def test_ignored_closure_variable_is_left_out():
    """A closure variable named in ignore= is not part of the key, nor shown in it."""
    lock = threading.Lock()
    calls = []

    @jobstamped(ignore=("lock", "calls"))
    def guarded(x):
        with lock:
            calls.append(x)
            return x

    assert 1 == guarded(1)
    assert 1 == guarded(1)
    assert [1] == calls
    assert () == guarded.key(1).closure


def test_closure_values_are_shown_in_the_key():
    """key() shows the closure values keyed with the arguments."""
    threshold = 3

    @jobstamped
    def over(x):
        return x > threshold

    assert (("threshold", 3),) == over.key(1).closure
