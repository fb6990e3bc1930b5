from __future__ import annotations

import logging
import os
import pickle
import stat
import subprocess
import sys
import time

import pytest

from jobstamps import HashMethod, MTimeMethod, StampKey, _methods, jobstamped
from jobstamps.exceptions import CacheDirError, JobstampsWarning

OLD = time.time() - 3600
METHODS = [MTimeMethod, HashMethod]


class Counter:
    """
    A function that records its calls and returns them.
    """

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return ["result", *args]


def counted(**options):
    counter = Counter()

    def job(x, y=2):
        return counter(x, y)

    decorated = jobstamped(ignore=("counter",), **options)(job)
    return decorated, counter


class TestDecorator:
    def test_bare_decorator_caches(self):
        """@jobstamped without arguments runs a call once."""
        runs = []

        @jobstamped(ignore=("runs",))
        def double(x):
            runs.append(x)
            return x * 2

        assert 4 == double(2)
        assert 4 == double(2)
        assert [2] == runs

    def test_metadata_is_kept(self):
        """The decorated function keeps its name, docstring and __wrapped__."""

        def original(x):
            """Docs."""

        decorated = jobstamped(original)

        assert "original" == decorated.__name__
        assert "Docs." == decorated.__doc__
        assert original is decorated.__wrapped__
        assert original.__qualname__ == decorated.__qualname__

    def test_equivalent_calls_run_once(self):
        """f(1, y=2), f(1, 2) and f(1) are one call."""
        job, counter = counted()

        job(1, y=2)
        job(1, 2)
        job(1)
        job(x=1)

        assert 1 == len(counter.calls)

    def test_different_arguments_run_again(self):
        """Another argument is another call."""
        job, counter = counted()

        job(1)
        job(2)
        job(1, 3)

        assert 3 == len(counter.calls)

    def test_each_hit_returns_a_fresh_object(self):
        """Mutating one returned value does not change the next hit's."""
        job, _ = counted()
        first = job(1)
        first.append("mutated")

        assert ["result", 1, 2] == job(1)

    def test_exception_stamps_nothing(self):
        """An exception propagates untouched and the next call runs again."""
        runs = []

        @jobstamped
        def failing(x):
            runs.append(x)
            raise ValueError("boom")

        for _ in range(2):
            with pytest.raises(ValueError, match="boom"):
                failing(1)
        assert [1, 1] == runs
        assert failing.out_of_date(1) is not None

    def test_key(self):
        """key() is the StampKey of a call, equal for equivalent calls."""
        job, _ = counted(version=3)

        key = job.key(1)

        assert isinstance(key, StampKey)
        assert key == job.key(1, y=2)
        assert key != job.key(2)
        assert 3 == key.version
        assert key.arguments == (("x", 1), ("y", 2))

    def test_clear(self):
        """clear() forgets every stamp of the function."""
        job, counter = counted()
        job(1)
        job(2)

        job.clear()
        job(1)
        job(2)

        assert 4 == len(counter.calls)

    def test_version_retires_old_stamps(self):
        """Stamps of another version are not used."""
        counter = Counter()

        def job(x):
            return counter(x)

        jobstamped(version=1, ignore=("counter",))(job)(1)
        jobstamped(version=1, ignore=("counter",))(job)(1)
        jobstamped(version=2, ignore=("counter",))(job)(1)

        assert 2 == len(counter.calls)

    def test_functions_named_alike_in_other_modules_do_not_share(self):
        """Identity is module + qualname."""
        counter = Counter()

        def make(module):
            def job(x):
                return counter(module, x)

            job.__module__ = module
            return jobstamped(ignore=("counter", "module"))(job)

        assert make("one")(1) != make("two")(1)
        assert 2 == len(counter.calls)

    def test_methods_are_keyed_by_their_instance(self):
        """A decorated method caches per instance, keyed by the instance's repr."""
        runs = []

        class Linter:
            def __init__(self, strict):
                self.strict = strict

            def __repr__(self):
                return f"Linter({self.strict})"

            @jobstamped(ignore=("runs",))
            def lint(self, path):
                runs.append((self.strict, path))
                return self.strict

        assert Linter(True).lint("a") is True
        assert Linter(True).lint("a") is True
        assert Linter(False).lint("a") is False
        assert [(True, "a"), (False, "a")] == runs
        assert Linter(True).lint.out_of_date("a") is None
        assert Linter(True).lint.out_of_date("b") is not None
        assert Linter(True).lint.key("a") != Linter(False).lint.key("a")
        Linter(True).lint.clear()
        assert Linter(True).lint.out_of_date("a") is not None


class TestOutOfDate:
    def test_no_stamp_is_the_stamp_path(self, cache_dir):
        """Without a stamp, out_of_date names the stamp that would be written."""
        job, _ = counted()

        reason = job.out_of_date(1)

        assert reason.startswith(str(cache_dir))
        job(1)
        assert os.path.isfile(reason)
        assert job.out_of_date(1) is None

    def test_missing_output(self, tmp_path):
        """A missing output makes the call run, and is named."""
        out = tmp_path / "out.txt"
        job, counter = counted(outputs=[out])
        job(1)

        assert str(out) == job.out_of_date(1)
        job(1)
        assert 2 == len(counter.calls)
        out.write_text("made")
        job(1)
        job(1)
        assert 2 == len(counter.calls)

    def test_outputs_callable_gets_the_arguments(self, tmp_path):
        """An outputs callable receives the call's arguments."""
        job, _ = counted(outputs=lambda x, y=2: [tmp_path / f"{x}.out"])
        (tmp_path / "1.out").write_text("")
        job(1)

        job(2)

        assert job.out_of_date(1) is None
        assert str(tmp_path / "2.out") == job.out_of_date(2)

    def test_disabled(self, monkeypatch):
        """While JOBSTAMPS_DISABLED is set, out_of_date says so."""
        job, _ = counted()
        job(1)
        monkeypatch.setenv("JOBSTAMPS_DISABLED", "1")

        assert "JOBSTAMPS_DISABLED" == job.out_of_date(1)


@pytest.mark.parametrize("method", METHODS)
class TestDependencies:
    def test_unchanged_dependency_is_a_hit(self, method, write):
        """A call whose dependency did not change runs once."""
        dep = write("dep", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=method)

        job(1)
        job(1)

        assert 1 == len(counter.calls)
        assert job.out_of_date(1) is None

    def test_missing_dependency_runs_every_time(self, method, tmp_path):
        """A dependency that does not exist makes every call run."""
        dep = str(tmp_path / "absent")
        job, counter = counted(dependencies=[dep], method=method)

        job(1)
        job(1)

        assert 2 == len(counter.calls)
        assert dep == job.out_of_date(1)

    def test_deleted_dependency(self, method, write):
        """A dependency deleted since the stamp makes the call run again."""
        dep = write("dep", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=method)
        job(1)
        os.unlink(dep)

        assert dep == job.out_of_date(1)
        job(1)
        assert 2 == len(counter.calls)

    def test_added_dependency(self, method, write):
        """A dependency added to the list makes the call run again."""
        first, second = write("a", mtime=OLD), write("b", mtime=OLD)
        deps = [first]
        job, counter = counted(dependencies=lambda x, y=2: deps, method=method)
        job(1)
        deps.append(second)

        assert second == job.out_of_date(1)
        job(1)
        job(1)
        assert 2 == len(counter.calls)

    def test_removed_dependency(self, method, write):
        """A dependency removed from the list makes the call run again."""
        first, second = write("a", mtime=OLD), write("b", mtime=OLD)
        deps = [first, second]
        job, counter = counted(dependencies=lambda x, y=2: deps, method=method)
        job(1)
        deps.remove(second)

        assert second == job.out_of_date(1)
        job(1)
        assert 2 == len(counter.calls)

    def test_reordered_dependencies_are_not_a_change(self, method, write):
        """The same files in another order are the same dependencies."""
        first, second = write("a", mtime=OLD), write("b", mtime=OLD)
        deps = [first, second]
        job, counter = counted(dependencies=lambda x, y=2: deps, method=method)
        job(1)
        deps.reverse()

        assert job.out_of_date(1) is None
        job(1)
        assert 1 == len(counter.calls)

    def test_updated_dependency(self, method, write):
        """A dependency with new contents makes the call run again."""
        dep = write("dep", "old", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=method)
        job(1)
        write("dep", "new contents", mtime=OLD + 10)

        assert dep == job.out_of_date(1)
        job(1)
        job(1)
        assert 2 == len(counter.calls)

    def test_touched_but_identical(self, method, write):
        """A touched dependency is a change for MTime, not for Hash."""
        dep = write("dep", "same", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=method)
        job(1)
        os.utime(dep, (OLD + 10, OLD + 10))

        job(1)
        job(1)

        expected_runs = 2 if method is MTimeMethod else 1
        assert expected_runs == len(counter.calls)

    def test_edit_during_the_run_shows_up_next_time(self, method, write):
        """Dependencies are fingerprinted before the function runs."""
        dep = write("dep", "before", mtime=OLD)

        def edit_while_running(x):
            write("dep", "edited while running", mtime=OLD + 10)
            return x

        job = jobstamped(dependencies=[dep], method=method)(edit_while_running)
        job(1)

        assert dep == job.out_of_date(1)

    def test_symlinks_are_followed(self, method, write, tmp_path):
        """A changed symlink target is a changed dependency."""
        target = write("target", "one", mtime=OLD)
        link = tmp_path / "link"
        link.symlink_to(target)
        job, counter = counted(dependencies=[link], method=method)
        job(1)
        write("target", "two!", mtime=OLD + 10)

        job(1)

        assert 2 == len(counter.calls)

    def test_directory_dependency_is_a_clear_error(self, method, tmp_path):
        """A directory can't be a dependency; the error says so."""
        job, _ = counted(dependencies=[tmp_path], method=method)

        with pytest.raises(IsADirectoryError, match="must be files"):
            job(1)


class TestMethodIsNotPartOfTheKey:
    @pytest.mark.parametrize(("first", "second"), [(MTimeMethod, HashMethod), (HashMethod, MTimeMethod)])
    def test_stamp_is_reused_under_the_other_method(self, first, second, write):
        """A stamp written under one method is a hit under the other when nothing changed."""
        dep = write("dep", mtime=OLD)
        counter = Counter()

        def job(x):
            return counter(x)

        jobstamped(dependencies=[dep], method=first, ignore=("counter",))(job)(1)
        again = jobstamped(dependencies=[dep], method=second, ignore=("counter",))(job)

        assert again.out_of_date(1) is None
        again(1)
        assert 1 == len(counter.calls)

    def test_methods_may_be_instances(self, write):
        """method= accepts an instance too."""
        dep = write("dep", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=HashMethod())
        job(1)
        os.utime(dep, (OLD + 5, OLD + 5))
        job(1)

        assert 1 == len(counter.calls)


class TestEnvironment:
    def test_disabled_always_runs_and_keeps_stamps(self, monkeypatch):
        """JOBSTAMPS_DISABLED runs every call and leaves existing stamps alone."""
        job, counter = counted()
        job(1)
        path = job._jobstamps_job.stamp_path((1,), {})
        def snapshot():
            with open(path, "rb") as f:
                return os.stat(path).st_mtime_ns, f.read()

        before = snapshot()
        monkeypatch.setenv("JOBSTAMPS_DISABLED", "1")

        job(1)
        job(2)

        assert 3 == len(counter.calls)
        assert before == snapshot()
        assert not os.path.exists(job._jobstamps_job.stamp_path((2,), {}))
        monkeypatch.delenv("JOBSTAMPS_DISABLED")
        job(1)
        assert 3 == len(counter.calls)

    def test_always_use_hashes(self, monkeypatch, write):
        """JOBSTAMPS_ALWAYS_USE_HASHES uses HashMethod even where MTime was asked."""
        monkeypatch.setenv("JOBSTAMPS_ALWAYS_USE_HASHES", "1")
        dep = write("dep", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=MTimeMethod)
        job(1)
        os.utime(dep, (OLD + 10, OLD + 10))

        job(1)

        assert 1 == len(counter.calls)

    def test_debug_logs_hits_and_misses_to_stderr(self, tmp_path):
        """JOBSTAMPS_DEBUG shows every miss and hit, with its reason, on stderr."""
        script = (
            "from jobstamps import jobstamped\n"
            "@jobstamped\n"
            "def job(x):\n"
            "    return x\n"
            "job(1)\n"
            "job(1)\n"
        )
        env = {**os.environ, "JOBSTAMPS_DEBUG": "1", "JOBSTAMPS_CACHE_DIR": str(tmp_path / "c")}

        err = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stderr

        assert "jobstamps: __main__:job(1): running, no stamp: " in err
        assert "jobstamps: __main__:job(1): hit, using " in err
        quiet = subprocess.run(
            [sys.executable, "-c", script],
            env={**env, "JOBSTAMPS_DEBUG": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        assert "" == quiet.stderr

    def test_debug_logs_go_through_the_jobstamps_logger(self, caplog, write):
        """A program that enables DEBUG for "jobstamps" sees the reasons."""
        dep = write("dep", "a", mtime=OLD)
        job, _ = counted(dependencies=[dep])
        caplog.set_level(logging.DEBUG, logger="jobstamps")
        job(1)
        write("dep", "changed", mtime=OLD + 5)
        job(1)

        messages = [r.getMessage() for r in caplog.records if r.name == "jobstamps"]
        assert any("no stamp" in m for m in messages)
        assert any(f"dependency changed: {dep}" in m for m in messages)

    def test_cache_dir_variable(self, monkeypatch, tmp_path):
        """JOBSTAMPS_CACHE_DIR chooses where stamps go."""
        monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(tmp_path / "elsewhere"))
        job, _ = counted()

        job(1)

        assert job._jobstamps_job.stamp_path((1,), {}).startswith(str(tmp_path / "elsewhere"))
        assert os.path.isfile(job._jobstamps_job.stamp_path((1,), {}))

    def test_default_cache_dir_is_the_users_and_private(self, monkeypatch, tmp_path):
        """Without settings, stamps go to $XDG_CACHE_HOME/jobstamps, created 0700."""
        monkeypatch.delenv("JOBSTAMPS_CACHE_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        job, _ = counted()

        job(1)

        root = tmp_path / "xdg" / "jobstamps"
        assert job._jobstamps_job.stamp_path((1,), {}).startswith(str(root))
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700

    def test_cache_dir_argument(self, tmp_path):
        """cache_dir= overrides the default."""
        job, _ = counted(cache_dir=tmp_path / "mine")
        job(1)

        assert job._jobstamps_job.stamp_path((1,), {}).startswith(str(tmp_path / "mine"))


class TestFailures:
    def test_unpicklable_result_warns_and_is_returned(self):
        """A result that can't be pickled is returned, not stamped, with one warning."""
        runs = []

        @jobstamped
        def make_lock(x):
            import threading

            runs.append(x)
            return threading.Lock()

        with pytest.warns(JobstampsWarning, match="can't be pickled"):
            assert make_lock(1) is not None
        with pytest.warns(JobstampsWarning):
            make_lock(1)
        assert [1, 1] == runs

    @pytest.mark.parametrize("garbage", [b"", b"garbage", b"JOBSTMP\x01" + b"\0" * 20])
    def test_corrupt_stamp_is_a_miss_and_is_rewritten(self, garbage):
        """A corrupt stamp makes the call run and is replaced by a good one."""
        job, counter = counted()
        job(1)
        path = job._jobstamps_job.stamp_path((1,), {})
        with open(path, "wb") as f:
            f.write(garbage)

        assert ["result", 1, 2] == job(1)
        assert ["result", 1, 2] == job(1)
        assert 2 == len(counter.calls)

    def test_cache_dir_that_is_a_file(self, tmp_path):
        """A cache dir that is a regular file is a CacheDirError, an OSError."""
        (tmp_path / "file").write_text("")
        job, counter = counted(cache_dir=tmp_path / "file")

        with pytest.raises(CacheDirError) as info:
            job(1)
        assert isinstance(info.value, OSError)
        assert [] == counter.calls

    def test_stamp_write_failure_warns_and_returns(self, monkeypatch):
        """A stamp that can't be written costs a warning, never the result."""
        job, _ = counted()

        def full(src, dst):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", full)
        with pytest.warns(JobstampsWarning, match="could not write the stamp"):
            assert ["result", 1, 2] == job(1)


class TestBadInput:
    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"dependencies": 5}, "dependencies must be an iterable of paths"),
            ({"dependencies": "a.py"}, "not the single path"),
            ({"dependencies": ["a.py", 3]}, "must hold paths"),
            ({"outputs": [None]}, "outputs must hold paths"),
            ({"method": object()}, "not a jobstamps Method"),
            ({"cache_dir": 3}, "cache_dir must be a path"),
        ],
    )
    def test_bad_options_are_clear_errors(self, options, message):
        """Each bad argument is a TypeError naming it."""
        with pytest.raises(TypeError, match=message):
            jobstamped(**options)(lambda x: x)

    def test_dependencies_callable_returning_garbage(self):
        """A dependencies callable returning a non-iterable is a clear error."""
        job, _ = counted(dependencies=lambda x, y=2: 42)

        with pytest.raises(TypeError, match="dependencies callable's result must be an iterable"):
            job(1)

    def test_dependencies_callable_raising(self):
        """An exception in the dependencies callable propagates with a note."""

        def broken(x, y=2):
            raise KeyError("nope")

        job, counter = counted(dependencies=broken)

        with pytest.raises(KeyError) as info:
            job(1)
        assert any("dependencies callable" in note for note in info.value.__notes__)
        assert [] == counter.calls

    def test_wrong_call_is_pythons_type_error(self):
        """Calling with the wrong arguments raises Python's TypeError, hit or not."""
        job, _ = counted()
        job(1)

        with pytest.raises(TypeError, match="unexpected keyword"):
            job(1, z=3)

    def test_unkeyable_argument(self):
        """An argument with no stable encoding is a TypeError naming the parameter."""
        job, counter = counted()

        with pytest.raises(TypeError, match="argument 'x'"):
            job(object())
        assert [] == counter.calls


def test_stamp_holds_a_pickle_of_the_result():
    """Results are stored with pickle."""
    job, _ = counted()
    job(1)
    from jobstamps._store import DirectoryStore

    stamp = DirectoryStore("unused").load(job._jobstamps_job.stamp_path((1,), {}))

    assert ["result", 1, 2] == pickle.loads(stamp.result)


def test_stamp_records_how_long_the_run_took(tmp_path):
    """A stamp records how long its run took, measured around the function."""
    from jobstamps._store import read_stamp

    @jobstamped(cache_dir=tmp_path)
    def slow():
        time.sleep(0.05)
        return 1

    before = time.perf_counter_ns()
    slow()
    elapsed = time.perf_counter_ns() - before
    stamp = read_stamp(slow._jobstamps_job.stamp_path((), {}))

    assert 50_000_000 <= stamp.duration_ns <= elapsed


def test_a_warning_is_shown_once(tmp_path):
    """A program that imports logging without configuring it sees a warning once."""
    script = (
        "import logging, threading\n"
        "from jobstamps import jobstamped\n"
        "@jobstamped\n"
        "def job(x):\n"
        "    return threading.Lock()\n"
        "job(1)\n"
    )
    env = {**os.environ, "JOBSTAMPS_CACHE_DIR": str(tmp_path / "c")}

    err = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stderr

    assert 1 == err.count("can't be pickled")


class TestQuickCheck:
    def test_racy_hash_fingerprint_is_not_trusted_on_a_hit(self, write):
        """An edit keeping mtime and size of a racily clean file is still caught."""
        dep = write("dep", "aaaa")
        job, counter = counted(dependencies=[dep], method=HashMethod)
        job(1)
        mtime_ns = os.stat(dep).st_mtime_ns
        write("dep", "bbbb")
        os.utime(dep, ns=(mtime_ns, mtime_ns))

        job(1)

        assert 2 == len(counter.calls)

    def test_other_methods_are_asked_on_every_hit(self, write):
        """A Method of one's own decides each hit, even with stats unchanged."""
        asked = []

        class Strict(HashMethod):
            def check(self, path, stat, recorded):
                asked.append(path)
                return super().check(path, stat, recorded)

        dep = write("dep", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=Strict)
        job(1)
        job(1)
        job(1)

        assert 1 == len(counter.calls)
        assert [dep, dep] == asked

    def test_same_stat_under_mtime_is_unchanged(self, write, settled, monkeypatch):
        """MTimeMethod trusts an unchanged stat signature: the file is not read."""
        dep = write("dep", "aaaa", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=MTimeMethod)
        job(1)
        monkeypatch.setattr(_methods, "file_digest", None)  # any read fails

        job(1)

        assert 1 == len(counter.calls)

    def test_mtime_rewrite_restoring_mtime_runs_again(self, write):
        """Under MTimeMethod, a same-size rewrite with its mtime set back is a change."""
        dep = write("dep", "aaaa", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=MTimeMethod)
        job(1)
        write("dep", "bbbb", mtime=OLD)

        job(1)

        assert 2 == len(counter.calls)


class TestRefresh:
    """
    A hit whose files had to be read again (same content, new stat) writes
    its stamp back with their new stat signatures, so the next hit need not
    read them; never over a newer stamp, never for a large result.
    """

    def stamp_of(self, job, *args):
        from jobstamps._store import read_stamp

        return read_stamp(job._jobstamps_job.stamp_path(args, {}))

    def test_refreshed_stamp_is_not_read_again(self, write, settled, monkeypatch):
        """After a refresh, the next hit reads no file."""
        dep = write("dep", "aaaa", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=HashMethod)
        job(1)
        os.utime(dep, (OLD + 1, OLD + 1))
        job(1)
        monkeypatch.setattr(_methods, "file_digest", None)  # any read fails

        job(1)

        assert 1 == len(counter.calls)
        assert os.stat(dep).st_mtime_ns == self.stamp_of(job, 1).dependencies[0][1][0]

    def test_newer_stamp_written_meanwhile_is_kept(self, write, settled, monkeypatch):
        """A stamp written by someone else between load and refresh is not replaced."""
        from jobstamps._stampfile import Stamp, pickled
        from jobstamps._store import DirectoryStore

        dep = write("dep", "aaaa", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=HashMethod)
        job(1)
        path = job._jobstamps_job.stamp_path((1,), {})
        os.utime(dep, (OLD + 1, OLD + 1))
        real = _methods.file_digest

        def read_while_another_writes(*args):
            newer = Stamp(time.time_ns(), 0, ((dep, _methods.fingerprint(dep, HashMethod())),), (), pickled("newer"))
            DirectoryStore(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(path))))).save(path, newer)
            return real(*args)

        monkeypatch.setattr(_methods, "file_digest", read_while_another_writes)

        assert ["result", 1, 2] == job(1)
        monkeypatch.setattr(_methods, "file_digest", real)
        assert "newer" == job(1)
        assert 1 == len(counter.calls)

    def test_large_result_is_not_rewritten(self, write, settled):
        """A stamp with a large result is never rewritten to refresh it."""
        dep = write("dep", "aaaa", mtime=OLD)
        runs = []

        @jobstamped(dependencies=[dep], method=HashMethod, ignore=("runs",))
        def big():
            runs.append(1)
            return os.urandom(512 * 1024)

        result = big()
        before = os.stat(big._jobstamps_job.stamp_path((), {}))
        os.utime(dep, (OLD + 1, OLD + 1))

        assert result == big()
        after = os.stat(big._jobstamps_job.stamp_path((), {}))
        assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        assert [1] == runs

    def test_refresh_never_waits_for_the_lock(self, write, settled):
        """While another caller holds the stamp's lock, a hit returns at once and rewrites nothing."""
        import threading

        from jobstamps._lock import StampLock

        dep = write("dep", "aaaa", mtime=OLD)
        job, counter = counted(dependencies=[dep], method=HashMethod)
        job(1)
        path = job._jobstamps_job.stamp_path((1,), {})
        before = os.stat(path)
        os.utime(dep, (OLD + 1, OLD + 1))
        held, release = threading.Event(), threading.Event()

        def hold():
            with StampLock(path):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            assert ["result", 1, 2] == job(1)
            after = os.stat(path)
        finally:
            release.set()
            holder.join()

        assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        assert 1 == len(counter.calls)


class TestRelativeCacheDir:
    def test_checked_where_it_is_used(self, tmp_path, monkeypatch):
        """
        A relative cache_dir names a folder of the current directory: after
        os.chdir into a folder whose one is writable by everyone, the call
        is refused before any stamp there is unpickled.
        """
        from jobstamps._stampfile import Stamp, pack
        from jobstamps.exceptions import UnsafeCacheDirError

        first, second = tmp_path / "A", tmp_path / "B"
        first.mkdir()
        second.mkdir()
        monkeypatch.chdir(first)

        @jobstamped(cache_dir=".stamps")
        def job(x):
            return x

        assert 1 == job(1)
        stamp = os.path.relpath(os.path.abspath(job._jobstamps_job.stamp_path((1,), {})), first)
        monkeypatch.chdir(second)
        planted = second / stamp
        planted.parent.mkdir(parents=True)
        evidence = tmp_path / "planted-code-ran"

        class Planted:
            def __reduce__(self):
                return (open, (str(evidence), "w"))  # unpickling creates the file

        payload = pickle.dumps(Planted())
        planted.write_bytes(b"".join(bytes(p) for p in pack(Stamp(time.time_ns(), 0, (), (), payload))))
        for folder, _, _ in os.walk(second / ".stamps"):
            os.chmod(folder, 0o777)

        with pytest.raises(UnsafeCacheDirError):
            job(1)

        assert not evidence.exists()

    def test_each_folder_has_its_own_stamps(self, tmp_path, monkeypatch):
        """The same relative cache_dir in two folders keeps two sets of stamps."""
        runs = []

        @jobstamped(cache_dir=".stamps", ignore=("runs",))
        def job(x):
            runs.append(os.getcwd())
            return x

        for name in ("A", "B", "A"):
            (tmp_path / name).mkdir(exist_ok=True)
            monkeypatch.chdir(tmp_path / name)
            job(1)

        assert [str(tmp_path / "A"), str(tmp_path / "B")] == runs
        assert (tmp_path / "B" / ".stamps").is_dir()


class TestDirectoryOutputs:
    def test_refused_with_restore_outputs(self, tmp_path):
        """An output that is a directory, with restore_outputs, is a clear error, not a warning on every run."""
        import warnings

        out = tmp_path / "out"
        runs = []

        @jobstamped(outputs=[out], restore_outputs=True, ignore=("runs",))
        def build():
            runs.append(1)
            out.mkdir(exist_ok=True)
            (out / "file").write_text("x")

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            for _ in range(2):
                with pytest.raises(IsADirectoryError, match="list the files in it") as raised:
                    build()
                assert str(out) == raised.value.filename

        assert [] == [str(w.message) for w in record]
        assert [1] == runs

    def test_allowed_without_restore_outputs(self, tmp_path):
        """Without restore_outputs a directory output only has to exist."""
        out = tmp_path / "out"
        runs = []

        @jobstamped(outputs=[out], ignore=("runs",))
        def build():
            runs.append(1)
            out.mkdir(exist_ok=True)

        build()
        build()

        assert [1] == runs


class TestWarningsNameTheCaller:
    def test_remote_failure(self, tmp_path, monkeypatch):
        """A remote store that fails warns at the line that called the function."""
        from .loopback import free_port

        @jobstamped(
            store=f"redis://127.0.0.1:{free_port()}/0",
            secret="a secret for the tests of warnings",
            method=HashMethod,
        )
        def job(x):
            return x

        with pytest.warns(JobstampsWarning, match="remote store") as record:
            job(1)

        assert [__file__] == [w.filename for w in record]

    def test_remote_failure_through_the_legacy_api(self, tmp_path, monkeypatch):
        """So does a call through jobstamp.run, a few frames deeper."""
        from jobstamps import jobstamp

        from .loopback import free_port

        monkeypatch.setenv("JOBSTAMPS_STORE", f"redis://127.0.0.1:{free_port()}/0")
        monkeypatch.setenv("JOBSTAMPS_SECRET", "a secret for the tests of warnings")

        def job(x):
            return x

        with pytest.warns(JobstampsWarning, match="remote store") as record:
            jobstamp.run(job, 1, jobstamps_method=jobstamp.HashMethod)

        assert [__file__] == [w.filename for w in record]

    def test_stamp_not_written(self, tmp_path, monkeypatch):
        """A stamp that can't be written warns at the caller's line, via either API."""
        from jobstamps import jobstamp

        def full(source, target):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", full)

        def job(x):
            return x

        with pytest.warns(JobstampsWarning, match="could not write") as record:
            jobstamped(job)(1)
            jobstamp.run(job, 2)

        assert [__file__, __file__] == [w.filename for w in record]
