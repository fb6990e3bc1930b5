"""
jobstamps.prune(): the Python side of ``jobstamp cache prune``, one
implementation for both.
"""

from __future__ import annotations

import datetime
import io
import os
import sys
import time

import pytest

import jobstamps
from jobstamps import Pruned, _maintenance, jobstamp_cmd_main, jobstamped
from jobstamps._stampfile import Stamp
from jobstamps._store import DirectoryStore, read_stamp

DAY_NS = 86400 * 10**9


def make(n, cache_dir=None):
    """
    A stamped function with stamps for 0..n-1: (function, stamp paths).
    """

    @jobstamped(cache_dir=cache_dir)
    def f(x):
        return "x" * 1000

    for x in range(n):
        f(x)
    return f, [f._jobstamps_job.stamp_path((x,), {}) for x in range(n)]


def age(path, days):
    stamp = read_stamp(path)
    DirectoryStore(os.path.dirname(path)).save(
        path,
        Stamp(
            stamp.created_ns - days * DAY_NS,
            stamp.duration_ns,
            stamp.dependencies,
            stamp.outputs,
            bytes(stamp.result),
        ),
    )


def exists(paths):
    return [os.path.exists(p) for p in paths]


class TestPrune:
    def test_older_than(self):
        """Stamps whose run started longer ago than older_than are removed, and counted."""
        f, paths = make(3)
        age(paths[0], 10)
        age(paths[1], 3)
        size = os.path.getsize(paths[0])

        pruned = jobstamps.prune(older_than=datetime.timedelta(days=7))

        assert Pruned(
            removed=1,
            removed_bytes=size,
            outputs=0,
            output_bytes=0,
            left=2,
            left_bytes=sum(os.path.getsize(p) for p in paths[1:]),
        ) == pruned
        assert [False, True, True] == exists(paths)
        assert paths[0] == f.out_of_date(0)

    def test_older_than_in_seconds(self):
        """older_than may be a number of seconds."""
        _, paths = make(2)
        age(paths[0], 2)

        assert 1 == jobstamps.prune(older_than=86400).removed
        assert [False, True] == exists(paths)

    def test_max_size_removes_the_oldest_first(self, tmp_path):
        """max_size removes the oldest stamps until the rest fit."""
        _, paths = make(4, tmp_path / "c")
        for i, path in enumerate(paths):
            os.utime(path, ns=(i * 10**9, i * 10**9))  # 0 is the oldest
        size = os.path.getsize(paths[0])

        pruned = jobstamps.prune(tmp_path / "c", max_size=2 * size)

        assert (2, 2) == (pruned.removed, pruned.left)
        assert [False, False, True, True] == exists(paths)

    def test_both(self, tmp_path):
        """Old stamps go first, then the oldest of the rest until they fit."""
        _, paths = make(3, str(tmp_path / "c"))
        age(paths[2], 30)
        now = time.time_ns()
        for i, path in enumerate(paths):  # 0 is the oldest, by minutes
            os.utime(path, ns=(now - (3 - i) * 60 * 10**9,) * 2)
        size = os.path.getsize(paths[0])

        pruned = jobstamps.prune(str(tmp_path / "c"), older_than=7 * 86400, max_size=size)

        assert [False, True, False] == exists(paths)
        assert (2, 1) == (pruned.removed, pruned.left)

    def test_functions_and_commands_alike(self, cache_dir):
        """prune() weighs every stamp in the directory, those of commands too."""
        assert 0 == jobstamp_cmd_main.main(["jobstamp", "--", "true"])
        make(1)

        assert 2 == jobstamps.prune(max_size=0).removed

    def test_only_stamp_files_are_removed(self, cache_dir):
        """Files jobstamps did not make, and the statistics, are left alone."""
        make(1)
        (cache_dir / "notes.txt").write_text("mine")
        jobstamps._counters.flush()

        assert 1 == jobstamps.prune(max_size=0).removed
        assert (cache_dir / "notes.txt").exists()
        assert (cache_dir / "stats").exists()

    def test_a_stamp_that_cannot_be_removed_is_reported_and_left(self, monkeypatch):
        """A failed removal is listed in failed, counted as left, and makes the command exit 1."""
        _, paths = make(2)
        real = _maintenance.remove_stamp

        def stubborn(path, root):
            if path == paths[0]:
                raise PermissionError(13, "Permission denied")
            real(path, root)

        monkeypatch.setattr(_maintenance, "remove_stamp", stubborn)
        pruned = jobstamps.prune(max_size=0)

        assert ((paths[0], "Permission denied"),) == pruned.failed
        assert (1, 1) == (pruned.removed, pruned.left)
        make(1)
        err = io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setattr(sys, "stdout", io.StringIO())
        status = jobstamp_cmd_main.main(["jobstamp", "cache", "prune", "--all", "--max-size", "0"])

        assert 1 == status
        assert f"jobstamp: could not remove {paths[0]}: Permission denied\n" == err.getvalue()

    @pytest.mark.parametrize(
        ("arguments", "error", "message"),
        [
            ({}, TypeError, "needs older_than, max_size or both"),
            ({"older_than": -1}, ValueError, "older_than=-1 .* can't be negative"),
            ({"older_than": "7d"}, TypeError, "older_than must be seconds"),
            ({"max_size": -5}, ValueError, "max_size=-5 can't be negative"),
            ({"max_size": "500M"}, TypeError, r"max_size must be bytes \(an int\)"),
            ({"max_size": 1, "cache_dir": 3}, TypeError, "cache_dir must be a path"),
        ],
    )
    def test_bad_arguments(self, arguments, error, message):
        """Missing or bad arguments are clear errors."""
        with pytest.raises(error, match=message):
            jobstamps.prune(**arguments)

    def test_a_missing_directory_holds_nothing(self, tmp_path):
        """Pruning a directory that does not exist removes nothing."""
        assert Pruned(0, 0, 0, 0, 0, 0) == jobstamps.prune(tmp_path / "none", max_size=0)


class TestOnlyCaches:
    def test_a_folder_that_is_no_cache_is_refused(self, tmp_path):
        """jobstamps.prune() of a folder with no stamp, no tag and other files removes nothing and says why."""
        project = tmp_path / "project"
        (project / "blobs").mkdir(parents=True)
        thesis = project / "blobs" / "thesis.txt"
        thesis.write_text("years of work")
        old = time.time() - 7 * 86400
        os.utime(thesis, (old, old))

        with pytest.raises(jobstamps.exceptions.CacheDirError, match="not a jobstamps cache"):
            jobstamps.prune(project, older_than=1)

        assert "years of work" == thesis.read_text()

    def test_an_emptied_cache_with_statistics_is_still_one(self, tmp_path):
        """A cache whose stamps are all gone but whose statistics remain can be pruned again."""
        cache = tmp_path / "cache"
        f, paths = make(2, cache_dir=cache)
        f(0)  # a hit, counted
        for path in paths:
            os.unlink(path)
        (cache / "CACHEDIR.TAG").unlink()
        from jobstamps import _counters

        _counters.flush()

        assert any(p.name.startswith("stats") for p in cache.iterdir())
        assert 0 == jobstamps.prune(cache, older_than=1).removed
