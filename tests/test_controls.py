"""
The decorator's everyday controls: ttl, env, ignore, cache_if, refresh,
clear's count, and the callables it refuses.
"""

from __future__ import annotations

import datetime
import functools
import io
import os
import sys

import pytest

from jobstamps import _controls, jobstamp_cmd_main, jobstamped
from jobstamps._stampfile import Stamp
from jobstamps._store import DirectoryStore, read_stamp

HOUR_NS = 3600 * 10**9


def age_stamp(stamped, *args, by_ns):
    """
    Rewrite the stamp of stamped(*args) as if its run had started *by_ns*
    earlier: no sleep, no clock to move.
    """
    path = stamped._jobstamps_job.stamp_path(args, {})
    stamp = read_stamp(path)
    old = Stamp(
        stamp.created_ns - by_ns,
        stamp.duration_ns,
        stamp.dependencies,
        stamp.outputs,
        bytes(stamp.result),
    )
    DirectoryStore(os.path.dirname(path)).save(path, old)
    return path


def cli(*args):
    """
    jobstamp *args in this process: (exit status, stderr lines).
    """
    err = io.StringIO()
    real = sys.stderr
    sys.stderr = err
    try:
        status = jobstamp_cmd_main.main(["jobstamp", *args])
    finally:
        sys.stderr = real
    return status, err.getvalue().splitlines()


class TestTtl:
    def test_a_stamp_younger_than_ttl_is_a_hit(self):
        """A stamp made within ttl seconds is used."""
        runs = []

        @jobstamped(ttl=3600, ignore=("runs",))
        def f(x):
            runs.append(x)
            return x

        f(1)
        age_stamp(f, 1, by_ns=HOUR_NS // 2)

        assert 1 == f(1)
        assert [1] == runs
        assert f.out_of_date(1) is None

    def test_a_stamp_older_than_ttl_runs_again(self):
        """A stamp whose run started more than ttl ago is stale, and replaced."""
        runs = []

        @jobstamped(ttl=datetime.timedelta(hours=1), ignore=("runs",))
        def f(x):
            runs.append(x)
            return x

        f(1)
        path = age_stamp(f, 1, by_ns=HOUR_NS + 10**9)

        assert path == f.out_of_date(1)
        assert 1 == f(1)
        assert [1, 1] == runs
        assert f.out_of_date(1) is None  # the new stamp is young

    def test_fractions_of_a_second(self):
        """A float ttl counts in seconds, to the nanosecond."""
        runs = []

        @jobstamped(ttl=0.5, ignore=("runs",))
        def f():
            runs.append(1)

        f()
        age_stamp(f, by_ns=600_000_000)
        f()

        assert 2 == len(runs)
        assert 500_000_000 == f._jobstamps_job.max_age_ns

    def test_ttl_is_the_command_lines_max_age(self):
        """ttl=90 and jobstamp --ttl 90s give the core the same maximum age."""
        from jobstamps._options import parse_duration

        @jobstamped(ttl=90)
        def f():
            pass

        assert parse_duration("90s") == f._jobstamps_job.max_age_ns

    @pytest.mark.parametrize(
        "ttl",
        [0, 0.0, -1, -0.5, datetime.timedelta(0), datetime.timedelta(hours=-1)],
    )
    def test_zero_or_negative_is_a_value_error(self, ttl):
        """A ttl that is not more than zero is refused, naming the argument."""
        with pytest.raises(ValueError, match=r"ttl=.* a time to live must be more than zero"):
            jobstamped(ttl=ttl)

    @pytest.mark.parametrize("ttl", [float("nan"), float("inf")])
    def test_not_finite_is_a_value_error(self, ttl):
        """NaN and infinity are not durations."""
        with pytest.raises(ValueError, match="must be finite"):
            jobstamped(ttl=ttl)

    @pytest.mark.parametrize("ttl", ["1h", True, [60]])
    def test_not_a_duration_is_a_type_error(self, ttl):
        """A ttl that is neither seconds nor a timedelta is a TypeError."""
        with pytest.raises(TypeError, match="ttl must be seconds"):
            jobstamped(ttl=ttl)

    @pytest.mark.parametrize("value", ["0", "-5", "-1h", "0s", "0h0m"])
    def test_the_command_line_refuses_the_same(self, value):
        """jobstamp --ttl 0 or a negative one exits 2 with one line saying why."""
        status, err = cli("--ttl", value, "--", "true")

        assert 2 == status
        assert [
            f"jobstamp: error: invalid duration {value!r} for --ttl: "
            "a time to live must be more than zero"
        ] == err

    def test_one_rule(self):
        """The decorator and the command line ask the same rule."""
        assert _controls.ttl_problem(0) is not None
        assert _controls.ttl_problem(-1) is not None
        assert _controls.ttl_problem(1) is None


class TestEnv:
    def test_values_are_part_of_the_key(self, monkeypatch):
        """env=(NAME,) keys on the variable's value; unset and empty differ."""
        runs = []

        @jobstamped(env=("FLAVOUR",), ignore=("runs",))
        def f():
            runs.append(os.environ.get("FLAVOUR"))

        for value in ["a", "b", "a", None, "", None, ""]:
            if value is None:
                monkeypatch.delenv("FLAVOUR", raising=False)
            else:
                monkeypatch.setenv("FLAVOUR", value)
            f()

        assert ["a", "b", None, ""] == runs

    def test_the_key_shows_the_values(self, monkeypatch):
        """StampKey.environment holds each variable's value, None when unset."""
        monkeypatch.setenv("B", "2")
        monkeypatch.delenv("A", raising=False)

        @jobstamped(env=["B", "A", "B"])
        def f():
            pass

        assert (("A", None), ("B", "2")) == f.key().environment

    def test_order_and_repeats_do_not_matter(self):
        """env is a set of names: their order and repeats don't change keys."""

        def f():
            pass

        one = jobstamped(env=("A", "B"))(f)
        other = jobstamped(env=["B", "A", "A"])(f)

        assert one.key().digest == other.key().digest

    def test_other_variables_do_not_matter(self, monkeypatch):
        """Only the variables named are keyed."""
        runs = []

        @jobstamped(env=("A",), ignore=("runs",))
        def f():
            runs.append(1)

        f()
        monkeypatch.setenv("SOMETHING_ELSE", "x")
        f()

        assert [1] == runs

    def test_naming_a_variable_keys_even_while_it_is_unset(self):
        """A function with env= and one without don't share stamps."""

        def f():
            pass

        assert jobstamped(env=("A",))(f).key().digest != jobstamped(f).key().digest

    @pytest.mark.parametrize(
        ("env", "error", "message"),
        [
            ("HOME", TypeError, r"not the single name 'HOME'; wrap it in a tuple"),
            (5, TypeError, "must be an iterable of names"),
            ([b"A"], TypeError, "must hold names"),
            (["A=1"], ValueError, "env takes names of environment variables, not 'A=1'"),
            ([""], ValueError, "not ''"),
        ],
    )
    def test_bad_names(self, env, error, message):
        """env takes an iterable of variable names."""
        with pytest.raises(error, match=message):
            jobstamped(env=env)

    def test_the_command_line_refuses_the_same(self):
        """jobstamp --env A=1 exits 2 with the decorator's reason."""
        assert (
            2,
            ["jobstamp: error: --env takes names of environment variables, not 'A=1'"],
        ) == cli("--env", "A=1", "--", "true")


class TestCacheIf:
    def test_a_false_answer_never_stamps(self):
        """A result cache_if refuses is returned, never stamped: every call runs."""
        runs = []

        @jobstamped(cache_if=lambda r: r["code"] == 0, ignore=("runs",))
        def f(code):
            runs.append(code)
            return {"code": code}

        assert {"code": 1} == f(1)
        assert {"code": 1} == f(1)
        path = f._jobstamps_job.stamp_path((1,), {})

        assert [1, 1] == runs
        assert not os.path.exists(path)
        assert path == f.out_of_date(1)

    def test_a_true_answer_stamps(self):
        """A result cache_if accepts is stamped as usual."""
        seen = []

        @jobstamped(cache_if=lambda r: seen.append(r) or True)
        def f(code):
            return code * 2

        f(2)
        f(2)

        assert [4] == seen  # asked once, about the result of the one run
        assert f.out_of_date(2) is None

    def test_an_exception_propagates_and_stamps_nothing(self):
        """An exception raised by cache_if reaches the caller; nothing is stamped."""

        def fussy(result):
            raise LookupError("no")

        @jobstamped(cache_if=fussy)
        def f():
            return 1

        with pytest.raises(LookupError):
            f()
        assert f._jobstamps_job.stamp_path((), {}) == f.out_of_date()

    def test_must_be_callable(self):
        """cache_if that is not callable is a TypeError."""
        with pytest.raises(TypeError, match="cache_if must be callable"):
            jobstamped(cache_if=True)


class TestRefresh:
    def test_runs_when_fresh_and_stamps_anew(self):
        """f.refresh() runs even though the stamp is fresh, and its result is stamped."""
        runs = []

        @jobstamped(ignore=("runs",))
        def f(x):
            runs.append(x)
            return len(runs)

        assert 1 == f(7)
        assert 1 == f(7)
        assert 2 == f.refresh(7)
        assert 2 == f(7)
        assert [7, 7] == runs

    def test_keyword_arguments_and_methods(self):
        """refresh takes the call's arguments, on bound methods too."""
        runs = []

        class Tool:
            def __repr__(self):
                return "Tool()"

            @jobstamped(ignore=("runs",))
            def work(self, x, *, scale=1):
                runs.append(x)
                return x * scale

        tool = Tool()
        assert 6 == tool.work(3, scale=2)
        assert 6 == tool.work.refresh(3, scale=2)
        assert [3, 3] == runs

    def test_respects_cache_if(self):
        """A refreshed result cache_if refuses is not stamped, and the old stamp stays."""
        answers = iter([1, -1])

        @jobstamped(cache_if=lambda r: r > 0, ignore=("answers",))
        def f():
            return next(answers)

        assert 1 == f()
        assert -1 == f.refresh()
        assert 1 == f()


class TestClear:
    def test_returns_how_many_stamps_it_removed(self):
        """f.clear() removes every stamp of f and returns their number."""

        @jobstamped
        def f(x):
            return x

        @jobstamped
        def g(x):
            return x

        for x in range(3):
            f(x)
        g(1)

        assert 3 == f.clear()
        assert 0 == f.clear()
        assert g.out_of_date(1) is None  # other functions keep theirs
        assert 1 == g.clear()


class TestRefusals:
    def test_a_class(self):
        """Decorating a class is a TypeError that says what to do instead."""
        with pytest.raises(TypeError, match=r"not classes: .*Point is a class"):

            @jobstamped
            class Point:
                pass

    @pytest.mark.parametrize("thing", [5, "f", b"", [len]])
    def test_not_callable(self, thing):
        """Decorating something not callable is a TypeError."""
        with pytest.raises(TypeError, match="is not callable"):
            jobstamped(thing)

    def test_a_generator_function(self):
        """A generator function is refused at decoration: return a list instead."""
        with pytest.raises(TypeError, match=r"a generator function \(.*numbers\).*return a list instead"):

            @jobstamped
            def numbers():
                yield 1

    def test_an_async_generator_function(self):
        """An async generator function is refused at decoration too."""
        with pytest.raises(TypeError, match=r"an async generator function.*return a list instead"):

            @jobstamped(version=2)
            async def numbers():
                yield 1

    def test_a_partial_or_method_of_a_generator(self):
        """A partial or a bound method of a generator function is refused the same way."""

        def numbers(n):
            yield from range(n)

        class Counter:
            def count(self):
                yield 1

        with pytest.raises(TypeError, match="return a list instead"):
            jobstamped(functools.partial(numbers, 3))
        with pytest.raises(TypeError, match="return a list instead"):
            jobstamped(Counter().count)

    def test_a_function_returning_a_list_is_fine(self):
        """A function that returns a list is stamped as usual."""

        @jobstamped
        def numbers(n):
            return list(range(n))

        assert [0, 1, 2] == numbers(3)
        assert numbers.out_of_date(3) is None

