"""
The jobstamps 0.0.20 API, exercised as its own test suite did.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from unittest.mock import Mock, call

import pytest

import jobstamps
from jobstamps import jobstamp

from .deadlocks import in_thread

OLD = time.time() - 3600
METHODS = [jobstamp.MTimeMethod, jobstamp.HashMethod]


def MockJob(**kwargs):
    job = Mock(__name__="job", **kwargs)
    job.return_value = None
    return job


@pytest.fixture(name="cwd")
def _cwd(tmp_path):
    return str(tmp_path)


def write(path, content="Contents", mtime=OLD):
    with open(path, "w") as f:
        f.write(content)
    os.utime(path, (mtime, mtime))
    return path


def test_top_level_names_are_the_legacy_functions():
    """jobstamps.run and jobstamps.out_of_date are jobstamp's."""
    assert jobstamps.run is jobstamp.run
    assert jobstamps.out_of_date is jobstamp.out_of_date
    assert jobstamps.HashMethod is jobstamp.HashMethod


def test_raise_if_cachedir_exists_as_file(cwd):
    """A cache dir that exists as a regular file raises OSError."""
    cache = write(os.path.join(cwd, "cache"), "Regular file")

    with pytest.raises(OSError):
        jobstamp.run(lambda: None, jobstamps_cache_output_directory=cache)


def test_running_job_creates_nested_cache_directory(cwd):
    """Missing nested cache directories are created."""
    cache = os.path.join(cwd, "nested", "deeper")
    jobstamp.run(MockJob(), 1, jobstamps_cache_output_directory=cache)

    assert os.path.isdir(cache)


def test_default_location_is_the_user_cache_not_tmp(cache_dir):
    """Without a cache directory, stamps go where the decorator's go."""
    job = MockJob()
    stamp = jobstamp.out_of_date(job, "default-location")
    jobstamp.run(job, "default-location")

    assert stamp.startswith(str(cache_dir) + os.sep)
    assert not stamp.startswith(tempfile.gettempdir() + os.sep + "jobstamps")
    assert os.path.isfile(stamp)
    assert jobstamp.out_of_date(job, "default-location") is None


def test_special_kwargs_are_consumed(cwd):
    """jobstamps_* keyword arguments never reach the function."""
    job = MockJob()
    jobstamp.run(
        job,
        1,
        flag=True,
        jobstamps_dependencies=[],
        jobstamps_output_files=[],
        jobstamps_cache_output_directory=cwd,
        jobstamps_method=jobstamp.HashMethod,
    )

    job.assert_called_once_with(1, flag=True)


@pytest.mark.parametrize("method", METHODS)
class TestLegacy:
    def test_out_of_date_when_no_stamp(self, method, cwd):
        """Without a stamp, something is out of date."""
        ret = jobstamp.out_of_date(
            MockJob(), 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )

        assert ret is not None

    def test_nothing_out_of_date_after_a_run(self, method, cwd):
        """After a run, nothing is out of date."""
        job = MockJob()
        jobstamp.run(job, 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method)

        assert None is jobstamp.out_of_date(
            job, 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )

    def test_returns_value_first_and_second_time(self, method, cwd):
        """The job's value is returned when run and when cached."""
        job = MockJob()
        job.return_value = "expected"
        first = jobstamp.run(job, 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method)
        second = jobstamp.run(job, 1, jobstamps_cache_output_directory=cwd)

        assert "expected" == first == second
        job.assert_called_once_with(1)

    def test_disabled_runs_twice(self, method, cwd, monkeypatch):
        """With JOBSTAMPS_DISABLED the job runs every time."""
        monkeypatch.setenv("JOBSTAMPS_DISABLED", "1")
        job = MockJob()
        for _ in range(2):
            jobstamp.run(job, 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method)

        job.assert_has_calls([call(1), call(1)])
        assert jobstamp.out_of_date(
            job, 1, jobstamps_cache_output_directory=cwd
        ) == "JOBSTAMPS_DISABLED"

    def test_different_args_run_again(self, method, cwd):
        """Other arguments run the job again."""
        job = MockJob()
        jobstamp.run(job, 1, jobstamps_cache_output_directory=cwd, jobstamps_method=method)
        jobstamp.run(job, 2, jobstamps_cache_output_directory=cwd, jobstamps_method=method)

        job.assert_has_calls([call(1), call(2)])

    def test_missing_dependency(self, method, cwd):
        """A dependency that doesn't exist runs the job every time and is named."""
        job = MockJob()
        dep = os.path.join(cwd, "dependency")
        options = dict(
            jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)
        jobstamp.run(job, 1, **options)

        job.assert_has_calls([call(1), call(1)])
        assert dep == jobstamp.out_of_date(job, 1, **options)

    def test_up_to_date_dependency_runs_once(self, method, cwd):
        """A dependency that did not change: the job runs once."""
        job = MockJob()
        dep = write(os.path.join(cwd, "dependency"))
        options = dict(
            jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)
        jobstamp.run(job, 1, **options)

        job.assert_called_once_with(1)

    def test_updated_dependency(self, method, cwd):
        """An updated dependency runs the job again and is named."""
        job = MockJob()
        dep = write(os.path.join(cwd, "dependency"))
        options = dict(
            jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)
        write(dep, "Updated contents", mtime=OLD + 10)

        assert dep == jobstamp.out_of_date(job, 1, **options)
        jobstamp.run(job, 1, **options)
        job.assert_has_calls([call(1), call(1)])

    def test_touched_identical_dependency(self, method, cwd):
        """Touching without changing: MTime runs again, Hash does not."""
        job = MockJob()
        dep = write(os.path.join(cwd, "dependency"))
        options = dict(
            jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)
        os.utime(dep, (OLD + 10, OLD + 10))
        jobstamp.run(job, 1, **options)

        assert (2 if method is jobstamp.MTimeMethod else 1) == job.call_count

    def test_added_dependency(self, method, cwd):
        """A dependency added to the list runs the job again."""
        job = MockJob()
        dep = write(os.path.join(cwd, "dependency"))
        new = write(os.path.join(cwd, "dependency_new"))
        jobstamp.run(
            job, 1, jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(
            job,
            1,
            jobstamps_dependencies=[dep, new],
            jobstamps_cache_output_directory=cwd,
            jobstamps_method=method,
        )

        job.assert_has_calls([call(1), call(1)])

    def test_deleted_dependency(self, method, cwd):
        """A deleted dependency runs the job again and is named."""
        job = MockJob()
        dep = write(os.path.join(cwd, "dependency"))
        options = dict(
            jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)
        os.remove(dep)

        assert dep == jobstamp.out_of_date(job, 1, **options)
        jobstamp.run(job, 1, **options)
        job.assert_has_calls([call(1), call(1)])

    def test_missing_output_file(self, method, cwd):
        """A missing output runs the job again and is named; an existing one does not."""
        job = MockJob()
        out = os.path.join(cwd, "expected_output")
        options = dict(
            jobstamps_output_files=[out], jobstamps_cache_output_directory=cwd, jobstamps_method=method
        )
        jobstamp.run(job, 1, **options)

        assert out == jobstamp.out_of_date(job, 1, **options)
        jobstamp.run(job, 1, **options)
        write(out)
        jobstamp.run(job, 1, **options)
        assert 2 == job.call_count


def test_two_callables_with_the_same_name_share_stamps(cwd):
    """As in 0.0.20, callables are known by name: two mocks named alike share."""
    first, second = MockJob(), MockJob()
    first.return_value = "first"
    jobstamp.run(first, 1, jobstamps_cache_output_directory=cwd)

    assert "first" == jobstamp.run(second, 1, jobstamps_cache_output_directory=cwd)
    second.assert_not_called()


def test_method_switch_reuses_the_stamp(cwd):
    """A stamp written with MTime is reused when asking for Hash."""
    job = MockJob()
    dep = write(os.path.join(cwd, "dependency"))
    jobstamp.run(job, 1, jobstamps_dependencies=[dep], jobstamps_cache_output_directory=cwd)

    assert None is jobstamp.out_of_date(
        job,
        1,
        jobstamps_dependencies=[dep],
        jobstamps_cache_output_directory=cwd,
        jobstamps_method=jobstamp.HashMethod,
    )


def test_ignore_is_consumed_and_leaves_parameters_out(cwd):
    """jobstamps_ignore= leaves parameters out of the key and is never passed on."""
    job = MockJob()

    def verbose_job(x, verbose=False):
        return job(x, verbose)

    jobstamp.run(verbose_job, 1, verbose=False, jobstamps_ignore=["verbose", "job"])
    jobstamp.run(verbose_job, 1, verbose=True, jobstamps_ignore=["verbose", "job"])

    assert [call(1, False)] == job.call_args_list


def test_ignore_takes_closure_variables(cwd):
    """jobstamps_ignore= names closure variables too; a closure over a lock needs it."""
    lock = threading.Lock()

    def guarded(x):
        with lock:
            return x

    with pytest.raises(TypeError, match=r"closure variable 'lock'.*ignore=\('lock',\)"):
        jobstamp.run(guarded, 1)
    assert 1 == jobstamp.run(guarded, 1, jobstamps_ignore=("lock",))


def test_lambdas_do_not_share_stamps(cwd):
    """Two lambdas run through jobstamp.run return their own results."""
    assert 6 == jobstamp.run(lambda x: x + 1, 5)
    assert 500 == jobstamp.run(lambda x: x * 100, 5)


def test_run_of_a_decorated_function(cwd):
    """jobstamp.run(g) of a stamped g runs, stamps its own result, and does not deadlock."""
    runs = []

    @jobstamps.jobstamped(ignore=("runs",))
    def g(x):
        runs.append(x)
        return x * 2

    assert 4 == in_thread(lambda: jobstamp.run(g, 2))
    assert 4 == in_thread(lambda: jobstamp.run(g, 2))
    assert 4 == g(2)
    assert [2] == runs
    assert jobstamp.out_of_date(g, 2) is None


def test_a_stamp_asked_for_while_it_is_being_made_does_not_wait(cwd):
    """A job whose run asks for its own stamp (an ignored flag differs) runs on instead of waiting for itself."""
    runs = []

    def outer(x, nested):
        runs.append(nested)
        if not nested:
            return jobstamp.run(outer, x, True, jobstamps_ignore=("nested", "runs"))
        return x

    assert 3 == in_thread(lambda: jobstamp.run(outer, 3, False, jobstamps_ignore=("nested", "runs")))
    assert [False, True] == runs
    assert 3 == jobstamp.run(outer, 3, False, jobstamps_ignore=("nested", "runs"))
    assert [False, True] == runs
