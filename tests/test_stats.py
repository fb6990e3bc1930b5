"""
Statistics: hits, misses, runs and time saved, counted in the process
without a write on the hit path, appended by each process, added up and
compacted by ``jobstamp cache stats``.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobstamps import Stats, _counters, _statsfile, jobstamp_cmd_main, jobstamped
from jobstamps._store import read_stamp

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

WORKER = """\
import os, sys
from jobstamps import _counters, jobstamped

@jobstamped(cache_dir=os.environ["STATS_CACHE"])
def job(key):
    return [key] * 100

def main(mode, *args):
    if mode == "calls":  # N calls over K keys, writing the counts after each
        calls, keys = map(int, args)
        for i in range(calls):
            job(i % keys)
            _counters.flush()
    elif mode == "killed":  # 10 calls written, 5 more never written
        for i in range(10):
            job(i % 2)
        _counters.flush()
        for i in range(5):
            job(i % 2)
        print("ready", flush=True)
        sys.stdin.read()

main(*sys.argv[1:])
"""


@pytest.fixture(name="worker")
def _worker(tmp_path, cache_dir):
    """
    Run the worker script in a new process: worker(mode, *args) -> Popen.
    """
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {
        **os.environ,
        "STATS_CACHE": str(cache_dir),
        "JOBSTAMPS_ROOT": str(tmp_path),
    }

    def start(*args, **kwargs):
        return subprocess.Popen(
            [sys.executable, str(script), *map(str, args)], env=env, **kwargs
        )

    return start


def worker_name():
    """
    The name the worker's job is counted under.
    """
    return ("function", "worker.py:job")


def totals(cache_dir):
    return _statsfile.read(str(cache_dir))


def stats_file(cache_dir):
    return Path(cache_dir) / _statsfile.STATS_FILE


class TestInTheProcess:
    def test_hits_misses_runs_and_time_saved(self, cache_dir):
        """A miss runs; each hit saves the duration of the run that made the stamp."""

        @jobstamped
        def f(x):
            return x

        f(1)
        for _ in range(3):
            f(1)
        duration_ns = read_stamp(f._jobstamps_job.stamp_path((1,), {})).duration_ns
        stats = f.stats()

        assert Stats(hits=3, misses=1, runs=1, time_saved=3 * duration_ns / 1e9) == stats
        assert 0.75 == stats.hit_rate

    def test_a_hit_writes_nothing(self, cache_dir):
        """Hits are counted in the process: no stats file, the stamp untouched."""

        @jobstamped
        def f():
            return 1

        f()
        path = f._jobstamps_job.stamp_path((), {})
        before = os.stat(path)
        for _ in range(100):
            f()

        assert not stats_file(cache_dir).exists()
        assert before.st_mtime_ns == os.stat(path).st_mtime_ns
        assert 100 == f.stats().hits

    def test_nothing_yet(self):
        """A function never called has empty statistics and a hit rate of 0."""

        @jobstamped
        def f():
            return 1

        assert Stats() == f.stats()
        assert 0.0 == f.stats().hit_rate

    def test_refresh_is_a_run_not_a_miss(self):
        """f.refresh() counts a run; only calls that found no fresh stamp are misses."""

        @jobstamped
        def f():
            return 1

        f()
        f.refresh()
        f()

        assert (1, 1, 2) == (f.stats().hits, f.stats().misses, f.stats().runs)

    def test_disabled_counts_nothing(self, monkeypatch):
        """While caching is disabled, calls are not counted."""

        @jobstamped
        def f():
            return 1

        monkeypatch.setenv("JOBSTAMPS_DISABLED", "1")
        f()
        f()

        assert Stats() == f.stats()

    def test_each_cache_directory_counts_apart(self, tmp_path):
        """The same function in two cache directories has two sets of counts."""

        def f():
            return 1

        one = jobstamped(cache_dir=tmp_path / "one")(f)
        two = jobstamped(cache_dir=tmp_path / "two")(f)
        one()
        one()
        two()

        assert (1, 1) == (one.stats().hits, one.stats().misses)
        assert (0, 1) == (two.stats().hits, two.stats().misses)

    def test_written_counts_are_not_counted_twice(self, cache_dir):
        """After a flush the counts are in the file, not also in the process."""

        @jobstamped
        def f():
            return 1

        f()
        f()
        _counters.flush()
        written = stats_file(cache_dir).read_bytes()
        _counters.flush()  # nothing new: nothing written

        assert 1 == written.count(_statsfile.MAGIC)
        assert written == stats_file(cache_dir).read_bytes()
        assert (1, 1, 1) == (f.stats().hits, f.stats().misses, f.stats().runs)

    def test_a_long_lived_process_writes_now_and_then(self, cache_dir, monkeypatch):
        """Once FLUSH_INTERVAL has passed, the next counted call writes the counts."""

        @jobstamped
        def f(x):
            return x

        f(1)
        assert not stats_file(cache_dir).exists()
        monkeypatch.setattr(_counters, "_next_flush", 0.0)
        f(2)

        assert {("function", f.key(1).function): {"misses": 2, "runs": 2}} == totals(
            cache_dir
        )

    def test_a_hit_from_a_remote_store_is_counted(self, tmp_path):
        """A stamp fetched from a remote store is a hit that saved its run's time."""
        from jobstamps import HashMethod

        def build(x):
            return [x] * 10

        options = {"method": HashMethod, "store": (tmp_path / "bucket").as_uri(), "secret": "a secret of sixteen bytes or more"}
        here = jobstamped(cache_dir=tmp_path / "here", **options)(build)
        there = jobstamped(cache_dir=tmp_path / "there", **options)(build)
        here(1)
        there(1)
        duration_ns = read_stamp(there._jobstamps_job.stamp_path((1,), {})).duration_ns

        assert Stats(hits=0, misses=1, runs=1) == here.stats()
        assert Stats(hits=1, misses=0, runs=0, time_saved=duration_ns / 1e9) == there.stats()

    def test_a_command_is_counted_under_its_program(self, tmp_path, cache_dir):
        """jobstamp counts under the command's program, not its arguments."""
        for word in ["a", "b", "a"]:
            assert 0 == jobstamp_cmd_main.main(["jobstamp", "--", "true", word])

        assert {"hits": 1, "misses": 2, "runs": 2} == {
            k: v for k, v in totals_with_pending(cache_dir)[("command", "true")].items() if k != "saved_ns"
        }


def totals_with_pending(cache_dir):
    found = totals(cache_dir)
    for key, counts in _counters.pending(str(cache_dir)).items():
        entry = found.setdefault(key, {})
        for counter, value in zip(_counters.COUNTERS, counts, strict=True):
            if value:
                entry[counter] = entry.get(counter, 0) + value
    return found


class TestRecords:
    def test_round_trip_of_awkward_names(self):
        """Kinds and names with separators, newlines, the magic or non-ASCII text survive."""
        names = [
            "a,b;c=d%e",
            "line\nbreak\r",
            _statsfile.MAGIC.decode() + "x",
            "caf\u00e9 \u2603",
            "bad\udcffbyte",
            "",
        ]
        entries = [("command", name, {"hits": i, "misses": 1}) for i, name in enumerate(names)]
        record = _statsfile.encode(entries)

        assert 1 == record.count(b"\n") and record.endswith(b"\n")
        assert 1 == record.count(_statsfile.MAGIC)
        assert [[(k, n, {c: v for c, v in cs.items() if v}) for k, n, cs in entries]] == _statsfile.decode(record)

    def test_torn_and_foreign_lines_are_skipped(self):
        """A torn record, garbage, or a bad checksum costs only itself."""
        one = _statsfile.encode([("function", "f", {"hits": 1})])
        two = _statsfile.encode([("function", "f", {"hits": 2})])
        three = _statsfile.encode([("function", "f", {"hits": 4})])
        flipped = bytearray(_statsfile.encode([("function", "f", {"hits": 8})]))
        flipped[-3] ^= 1
        data = one + two[:-7] + b"garbage\n\x00\xff" + bytes(flipped) + three + b"@jobstamps"

        assert [[("function", "f", {"hits": 1})], [("function", "f", {"hits": 4})]] == _statsfile.decode(data)

    def test_counters_unknown_to_this_version_are_kept(self, cache_dir):
        """A counter a newer version writes is added up and compacted like the others."""
        cache_dir.mkdir()
        path = str(stats_file(cache_dir))
        for waits in (2, 3):
            _statsfile.append(path, _statsfile.encode([("command", "make", {"hits": 1, "waits": waits})]))

        assert {("command", "make"): {"hits": 2, "waits": 5}} == _statsfile.compact(str(cache_dir))
        assert {("command", "make"): {"hits": 2, "waits": 5}} == totals(cache_dir)


class TestProcesses:
    def test_eight_processes_add_up_exactly_while_being_compacted(self, worker, cache_dir):
        """8 processes x 50 calls, each writing after every call, compacted meanwhile: the totals are exact."""
        processes = [worker("calls", 50, 5) for _ in range(8)]
        compactions = 0
        while any(p.poll() is None for p in processes):
            _statsfile.compact(str(cache_dir))
            compactions += 1
        for p in processes:
            assert 0 == p.wait()
        counted = totals(cache_dir)[worker_name()]

        assert compactions > 0
        # One run per stamp: each of the 5 keys ran once; every other call hit.
        assert (395, 5, 5) == (counted["hits"], counted["misses"], counted["runs"])
        assert [] == sorted(p.name for p in cache_dir.iterdir() if p.name.endswith(".old"))

    def test_a_killed_process_loses_only_its_unwritten_counts(self, worker, cache_dir):
        """SIGKILL loses what the process had not written; the file stays whole and usable."""
        killed = worker("killed", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert b"ready\n" == killed.stdout.readline()
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        killed.stdin.close()
        killed.stdout.close()

        assert {"hits": 8, "misses": 2, "runs": 2} == {
            k: v for k, v in totals(cache_dir)[worker_name()].items() if k != "saved_ns"
        }
        assert 0 == worker("calls", 4, 2).wait()
        after = totals(cache_dir)[worker_name()]
        assert (12, 2, 2) == (after["hits"], after["misses"], after["runs"])
        assert all(
            record for record in _statsfile.decode(stats_file(cache_dir).read_bytes())
        )

    def test_a_forked_child_starts_from_zero(self, cache_dir):
        """A child writes only what it counted, not what its parent had counted."""

        @jobstamped
        def f():
            return 1

        f()
        f()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                f()
                _counters.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        name = ("function", f.key().function)

        assert {"hits": 1} == {k: v for k, v in totals(cache_dir)[name].items() if k != "saved_ns"}
        assert (2, 1) == (f.stats().hits, f.stats().misses)

    @pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
    def test_multiprocessing_children_record(self, cache_dir, method):
        """Children of multiprocessing write their counts, though fork children leave by os._exit."""
        context = multiprocessing.get_context(method)
        process = context.Process(target=calls_in_child, args=(str(cache_dir), 3))
        process.start()
        process.join(60)

        assert 0 == process.exitcode
        assert {"hits": 2, "misses": 1, "runs": 1} == {
            k: v for k, v in totals(cache_dir)[("function", CHILD_JOB)].items() if k != "saved_ns"
        }

    def test_pool_workers_record(self, cache_dir):
        """Workers of a multiprocessing pool write their counts when the pool closes."""
        with multiprocessing.get_context("fork").Pool(2) as pool:
            pool.starmap(calls_in_child, [(str(cache_dir), 1)] * 6)
            pool.close()
            pool.join()
        counted = totals(cache_dir)[("function", CHILD_JOB)]

        assert 6 == counted.get("hits", 0) + counted["misses"]
        assert 1 == counted["runs"]

    def test_a_read_only_cache_directory_only_loses_counts(self, tmp_path):
        """Where the stats can't be written, calls still work and nothing is raised."""
        cache = tmp_path / "ro"
        mounted = IS_ROOT and _mount_tmpfs(cache)
        try:

            @jobstamped(cache_dir=cache)
            def f():
                return 1

            f()
            if mounted:
                subprocess.run(["mount", "-o", "remount,ro", str(cache)], check=True)
            else:
                cache.chmod(0o500)
            assert 1 == f()
            _counters.flush()  # raises nothing, writes nothing

            assert not stats_file(cache).exists()
            assert (1, 1) == (f.stats().hits, f.stats().misses)  # still counted here
        finally:
            if mounted:
                subprocess.run(["umount", "-l", str(cache)], check=False)
            else:
                cache.chmod(0o700)


def calls_in_child(cache_dir, calls):
    child_job(cache_dir, calls)


def child_job(cache_dir, calls):
    @jobstamped(cache_dir=cache_dir)
    def job():
        return "done"

    for _ in range(calls):
        job()


CHILD_JOB = f"{__name__}:child_job.<locals>.job"


def _mount_tmpfs(where):
    where.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


class TestCompaction:
    def test_folds_the_records_into_one(self, cache_dir):
        """After a compaction the base holds one record and the live file is gone."""

        @jobstamped
        def f(x):
            return x

        for x in [1, 1, 2]:
            f(x)
            _counters.flush()
        before = totals(cache_dir)
        compacted = _statsfile.compact(str(cache_dir))

        assert before == compacted == totals(cache_dir)
        assert not stats_file(cache_dir).exists()
        assert 1 == len(_statsfile.decode((cache_dir / "stats.base").read_bytes()))

    def test_a_compaction_killed_before_removing_the_old_file_counts_it_once(
        self, cache_dir, monkeypatch
    ):
        """An old file the base already took in is not counted again, and goes next time."""
        cache_dir.mkdir()
        live = str(stats_file(cache_dir))
        _statsfile.append(live, _statsfile.encode([("command", "make", {"hits": 3})]))
        monkeypatch.setattr(_statsfile._fs, "quietly", lambda call, arg: None)
        _statsfile.compact(str(cache_dir))
        monkeypatch.undo()
        [old] = [p for p in cache_dir.iterdir() if p.name.endswith(".old")]

        assert {("command", "make"): {"hits": 3}} == totals(cache_dir)
        assert {("command", "make"): {"hits": 3}} == _statsfile.compact(str(cache_dir))
        assert not old.exists()

    def test_a_growing_file_is_compacted_by_its_writers(self, cache_dir, monkeypatch):
        """A writer that finds the file larger than COMPACT_BYTES compacts it."""
        monkeypatch.setattr(_counters, "COMPACT_BYTES", 200)

        @jobstamped
        def f(x):
            return x

        for x in range(5):
            f(x)
            _counters.flush()

        assert stats_file(cache_dir).stat().st_size <= 200 if stats_file(cache_dir).exists() else True
        assert (cache_dir / "stats.base").exists()
        assert 5 == f.stats().misses

    def test_zero(self, cache_dir):
        """compact(zero=True) returns the totals and starts again from nothing."""

        @jobstamped
        def f():
            return 1

        f()
        _counters.flush()

        assert {("function", f.key().function): {"misses": 1, "runs": 1}} == _statsfile.compact(
            str(cache_dir), zero=True
        )
        assert {} == totals(cache_dir)
        assert Stats() == f.stats()


STATS_RECORDS = [
    ("command", "make", {"hits": 120, "misses": 3, "runs": 3, "saved_ns": 843 * 10**9}),
    ("function", "pkg.lint", {"hits": 40, "misses": 10, "runs": 10, "saved_ns": 21 * 10**8}),
    ("command", "echo", {"misses": 2, "runs": 2}),
]


class TestCacheStatsCommand:
    def write(self, cache_dir):
        cache_dir.mkdir(exist_ok=True)
        for entry in STATS_RECORDS:
            _statsfile.append(str(stats_file(cache_dir)), _statsfile.encode([entry]))

    def run(self, *args):
        out, err = [], []
        real = sys.stdout, sys.stderr

        class Sink:
            def __init__(self, into):
                self.into = into

            def write(self, text):
                self.into.append(text)

            def flush(self):
                pass

        sys.stdout, sys.stderr = Sink(out), Sink(err)
        try:
            status = jobstamp_cmd_main.main(["jobstamp", "cache", "stats", *args])
        finally:
            sys.stdout, sys.stderr = real
        return status, "".join(out), "".join(err)

    def test_one_line_each_most_time_saved_first_then_the_total(self, cache_dir):
        """cache stats shows hits, misses, hit rate and time saved per command and function."""
        self.write(cache_dir)

        assert (
            0,
            textwrap.dedent(
                """\
                HITS  MISSES  HIT RATE   SAVED  NAME
                 120       3     97.6%  14m03s  $ make
                  40      10     80.0%    2.1s  pkg.lint
                   0       2      0.0%     0ms  $ echo
                 160      15     91.4%  14m05s  total
                """
            ),
            "",
        ) == self.run("--stamp-directory", str(cache_dir))

    def test_json(self, cache_dir):
        """--json gives every counter, the hit rate and the seconds saved."""
        self.write(cache_dir)
        status, out, _ = self.run("--json", "--stamp-directory", str(cache_dir))
        document = json.loads(out)

        assert 0 == status
        assert ["make", "pkg.lint", "echo"] == [e["name"] for e in document["entries"]]
        assert {
            "kind": "command",
            "name": "make",
            "hits": 120,
            "misses": 3,
            "runs": 3,
            "saved_ns": 843 * 10**9,
            "hit_rate": 120 / 123,
            "time_saved": 843.0,
        } == document["entries"][0]
        assert (160, 15, 845.1) == (
            document["total"]["hits"],
            document["total"]["misses"],
            document["total"]["time_saved"],
        )
        assert str(cache_dir) == document["directory"]
        assert document["zeroed"] is False

    def test_lease_waits_get_columns_of_their_own(self, cache_dir):
        """Where a call waited for another machine's lease, cache stats shows the waits and the time they took."""
        cache_dir.mkdir()
        entry = ("command", "codegen", {"hits": 3, "misses": 1, "runs": 1, "saved_ns": 6 * 10**9, "lease_waits": 2, "lease_wait_ns": 4 * 10**9})
        _statsfile.append(str(stats_file(cache_dir)), _statsfile.encode([entry]))

        status, out, _ = self.run("--stamp-directory", str(cache_dir))

        assert 0 == status
        assert [
            "HITS  MISSES  HIT RATE  SAVED  WAITS  WAITED  NAME",
            "   3       1     75.0%   6.0s      2    4.0s  $ codegen",
            "   3       1     75.0%   6.0s      2    4.0s  total",
        ] == out.splitlines()

    def test_zero_shows_then_resets(self, cache_dir):
        """--zero shows the statistics, then starts them again from nothing."""
        self.write(cache_dir)
        status, out, _ = self.run("--zero", "--stamp-directory", str(cache_dir))

        assert 0 == status
        assert "$ make" in out
        assert out.endswith(f"zeroed the statistics of {cache_dir}\n")
        assert (0, f"no statistics yet in {cache_dir}\n", "") == self.run(
            "--stamp-directory", str(cache_dir)
        )
        assert {"entries": []} == {
            "entries": json.loads(self.run("--json", "--stamp-directory", str(cache_dir))[1])["entries"]
        }

    def test_a_missing_directory_is_an_error(self, tmp_path):
        """A stamp directory that does not exist is one line and exit status 2."""
        status, out, err = self.run("--stamp-directory", str(tmp_path / "nope"))

        assert (2, "") == (status, out)
        assert 1 == len(err.splitlines())

    def test_counts_of_real_commands_and_functions(self, tmp_path, cache_dir):
        """Commands run through jobstamp and stamped functions share the directory's statistics."""
        environ = {**os.environ, "JOBSTAMPS_CACHE_DIR": str(cache_dir), "JOBSTAMPS_ROOT": str(tmp_path)}
        for _ in range(3):
            subprocess.run([sys.executable, "-m", "jobstamps", "--", "true"], env=environ, check=True)
        script = tmp_path / "tool.py"
        script.write_text("from jobstamps import jobstamped\n@jobstamped\ndef f():\n    return 1\nf(); f()\n")
        subprocess.run([sys.executable, str(script)], env=environ, check=True)
        document = json.loads(self.run("--json", "--stamp-directory", str(cache_dir))[1])
        counts = {(e["kind"], e["name"]): (e["hits"], e["misses"]) for e in document["entries"]}

        assert {("command", "true"): (2, 1), ("function", "tool.py:f"): (1, 1)} == counts

    def test_help(self):
        """jobstamp --help and jobstamp cache --help describe cache stats and its options."""
        main = self.run_main("--help")
        cache = self.run_main("cache", "--help")

        assert "cache stats" in main
        assert all(option in cache for option in ("cache stats", "--json", "--zero"))

    def run_main(self, *args):
        out = io.StringIO()
        real = sys.stdout
        sys.stdout = out
        try:
            assert 0 == jobstamp_cmd_main.main(["jobstamp", *args])
        finally:
            sys.stdout = real
        return out.getvalue()
