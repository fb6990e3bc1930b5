"""
The one freshness decision, stale(), on stamps made by hand.
"""

from __future__ import annotations

import os
import time

import pytest

from jobstamps import HashMethod, MTimeMethod
from jobstamps._freshness import Call, Miss, born_ns, stale
from jobstamps._methods import fingerprint
from jobstamps._stampfile import Stamp

OLD = int(time.time()) - 3600


@pytest.fixture(name="files")
def _files(tmp_path):
    """
    Two dependency files written an hour ago, and an output that exists.
    """
    paths = []
    for name in ("a", "b", "out"):
        path = tmp_path / name
        path.write_text(name)
        os.utime(path, (OLD, OLD))
        paths.append(str(path))
    return paths


def stamp_of(deps, method=None, created_ns=None):
    method = MTimeMethod() if method is None else method
    return Stamp(
        time.time_ns() if created_ns is None else created_ns,
        0,
        tuple((dep, fingerprint(dep, method)) for dep in deps),
        (),
        b"",
    )


class TestStale:
    def test_fresh(self, files):
        """A stamp of unchanged dependencies with its outputs present is fresh."""
        a, b, out = files

        assert None is stale(stamp_of([a, b]), Call("s", (a, b), (out,)), MTimeMethod())

    def test_no_stamp(self, files):
        """No stamp is a miss on the stamp's own path."""
        assert Miss("s", "no stamp") == stale(None, Call("s", (), ()), MTimeMethod())

    def test_reasons(self, files, tmp_path):
        """Each way a call goes stale names its file and its reason."""
        a, b, _ = files
        stamp = stamp_of([a, b])
        gone = str(tmp_path / "gone")

        assert Miss(gone, "output missing") == stale(stamp, Call("s", (a, b), (gone,)), MTimeMethod())
        assert Miss(gone, "dependency added") == stale(stamp, Call("s", (a, b, gone), ()), MTimeMethod())
        assert Miss(b, "dependency removed") == stale(stamp, Call("s", (a,), ()), MTimeMethod())
        assert None is stale(stamp, Call("s", (b, a), ()), MTimeMethod())
        os.utime(b, (OLD + 1, OLD + 1))
        assert Miss(b, "dependency changed") == stale(stamp, Call("s", (a, b), ()), MTimeMethod())
        os.unlink(a)
        assert Miss(a, "dependency missing") == stale(stamp, Call("s", (a, b), ()), MTimeMethod())

    def test_appeared(self, files, tmp_path):
        """A dependency missing when the job ran and present now is a change."""
        a, _, _ = files
        later = str(tmp_path / "later")
        stamp = stamp_of([a, later])
        with open(later, "w") as file:
            file.write("now")

        assert Miss(later, "dependency appeared") == stale(stamp, Call("s", (a, later), ()), MTimeMethod())

    def test_expired(self, files, tmp_path):
        """A stamp older than max_age is stale; its age counts from when its run started."""
        a, _, _ = files
        path = str(tmp_path / "stamp")  # a file written now stands in for the stamp's
        with open(path, "w") as file:
            file.write("")
        stamp = stamp_of([a], created_ns=time.time_ns() - 10 * 10**9)

        assert Miss(path, "stamp expired") == stale(stamp, Call(path, (a,), ()), MTimeMethod(), 5 * 10**9)
        assert None is stale(stamp, Call(path, (a,), ()), MTimeMethod(), 60 * 10**9)

    def test_refreshed_fingerprints_are_offered(self, files, settled):
        """A file touched with the same content is fresh under HashMethod, with its new stat to record."""
        a, _, _ = files
        stamp = stamp_of([a], HashMethod())
        os.utime(a, (OLD + 5, OLD + 5))
        call = Call("s", (a,), ())

        assert None is stale(stamp, call, HashMethod())
        assert [(a, os.stat(a).st_mtime_ns)] == [(dep, fp[0]) for dep, fp in call.refreshed]


class TestRestorable:
    def test_restorable_output_is_not_a_miss(self, files, tmp_path):
        """A missing output that could be written back does not make the stamp stale."""
        a, _, _ = files
        gone = str(tmp_path / "gone")
        stamp = stamp_of([a])

        assert None is stale(stamp, Call("s", (a,), (gone,)), MTimeMethod(), restorable=lambda p: True)
        assert Miss(gone, "output missing") == stale(
            stamp, Call("s", (a,), (gone,)), MTimeMethod(), restorable=lambda p: False
        )

    def test_changed_dependency_comes_first(self, files, tmp_path):
        """With outputs to restore, a changed dependency is the reason, not the output restored in vain."""
        a, _, _ = files
        gone = str(tmp_path / "gone")
        stamp = stamp_of([a])
        os.utime(a, (OLD + 1, OLD + 1))
        asked = []

        def restorable(path):
            asked.append(path)
            return True

        assert Miss(a, "dependency changed") == stale(
            stamp, Call("s", (a,), (gone,)), MTimeMethod(), restorable=restorable
        )
        assert [] == asked


def test_age_counts_from_the_earlier_of_run_and_file():
    """A stamp is as old as its run's start, or its file if that is older."""
    stamp = Stamp(100, 0, (), (), b"")

    assert 100 == born_ns(stamp, 200)
    assert 50 == born_ns(stamp, 50)


def jobstamp(*args, cwd, env=None, timeout=60):
    """
    Run the jobstamp command in *cwd*; its completed process.
    """
    import shutil
    import subprocess
    import sys

    executable = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
    return subprocess.run(
        [executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(name="options", params=[[], ["--use-hashes"]], ids=["mtime", "hashes"])
def _options(request):
    return request.param


class TestReplacedFiles:
    def test_symlink_repointed(self, tmp_path, options):
        """ln -sfn to another file with the same mtime and size is a change (real processes)."""
        import subprocess

        for name, text in (("config.dev.json", "{1}\n"), ("config.prod.json", "{2}\n")):
            (tmp_path / name).write_text(text)
            os.utime(tmp_path / name, (OLD, OLD))
        subprocess.run(["ln", "-sfn", "config.dev.json", "config.json"], cwd=tmp_path, check=True)
        command = [*options, "--dependencies", "config.json", "--", "cat", "config.json"]

        first = jobstamp(*command, cwd=tmp_path).stdout
        subprocess.run(["ln", "-sfn", "config.prod.json", "config.json"], cwd=tmp_path, check=True)
        second = jobstamp(*command, cwd=tmp_path).stdout

        assert ["{1}\n", "{2}\n"] == [first, second]

    def test_copied_and_renamed_over(self, tmp_path, options):
        """cp -p new settings.json.tmp && mv settings.json.tmp settings.json is a change (real processes)."""
        import subprocess

        for name, text in (("settings.json", "{1}\n"), ("new", "{2}\n")):
            (tmp_path / name).write_text(text)
            os.utime(tmp_path / name, (OLD, OLD))
        command = [*options, "--dependencies", "settings.json", "--", "cat", "settings.json"]

        first = jobstamp(*command, cwd=tmp_path).stdout
        subprocess.run(
            "cp -p new settings.json.tmp && mv settings.json.tmp settings.json",
            shell=True, cwd=tmp_path, check=True,
        )
        second = jobstamp(*command, cwd=tmp_path).stdout

        assert ["{1}\n", "{2}\n"] == [first, second]


class TestNotRegularFiles:
    def test_fifo(self, tmp_path, options):
        """A FIFO as a dependency is one clear error, never a wait for a writer."""
        import subprocess

        os.mkfifo(tmp_path / "fifo")
        try:
            result = jobstamp(*options, "--dependencies", "fifo", "--", "true", cwd=tmp_path, timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("jobstamp waited for a writer of the FIFO")

        assert 2 == result.returncode
        assert [
            "jobstamp: error: jobstamps dependencies must be regular files, and this is a FIFO (named pipe): fifo"
        ] == result.stderr.splitlines()
