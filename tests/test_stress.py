"""
Concurrency, crashes, corruption and hostile directories, with real
processes and real files.

Every scenario checks that no caller lost its value (each got exactly the
value the function returns) and counts how often the function body ran.
The child processes are tests/stress_worker.py.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import json
import logging
import os
import pickle
import random
import signal
import stat
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jobstamps import HashMethod, _fs, _job, jobstamped
from jobstamps._lock import StampLock
from jobstamps._stampfile import Stamp, unpack
from jobstamps._store import DirectoryStore
from jobstamps.exceptions import (
    CacheDirError,
    JobstampsWarning,
    UnpicklableResultError,
    UnsafeCacheDirError,
)

pytestmark = pytest.mark.stress

WORKER = str(Path(__file__).with_name("stress_worker.py"))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("JOBSTAMPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(tmp_path / "default-cache"))
    _job._stores.clear()
    yield
    _job._stores.clear()


@pytest.fixture(name="cache")
def _cache(tmp_path):
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture(name="counter")
def _counter(tmp_path):
    return tmp_path / "counter"


def runs(counter: Path) -> collections.Counter[str]:
    """
    How many times the body ran, per key, from the counter file.
    """
    if not counter.exists():
        return collections.Counter()
    return collections.Counter(line.split()[0] for line in counter.read_text().splitlines())


class Workers:
    """
    Child processes started by one test, all killed at its end.
    """

    def __init__(self, cache: Path, counter: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")}
        self.env.update(STRESS_CACHE=str(cache), STRESS_COUNTER=str(counter))
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            pass_fds=pass_fds,
        )
        self.procs.append(proc)
        return proc

    def together(self, n: int, mode: str, *args: str) -> list[subprocess.Popen[str]]:
        """
        Start *n* children that wait until all are ready, then go at once.
        """
        go_read, go_write = os.pipe()
        procs = []
        for _ in range(n):
            procs.append(self.start(mode, str(go_read), *args, pass_fds=(go_read,)))
        os.close(go_read)
        for proc in procs:
            assert proc.stdout is not None
            assert "ready" in json.loads(proc.stdout.readline())
        os.close(go_write)  # every child's read returns now
        return procs

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture(name="workers")
def _workers(cache, counter):
    workers = Workers(cache, counter)
    yield workers
    workers.close()


def report(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def expected(key: str) -> dict[str, object]:
    return {"key": key, "payload": [key] * 2000}


def blocked_on(lock_path: Path, n: int) -> None:
    """
    Wait until *n* processes are blocked on the flock of *lock_path*.
    """
    inode = os.stat(lock_path).st_ino
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open("/proc/locks") as file:
                lines = file.read().splitlines()
        except OSError:  # not Linux: give them time instead
            time.sleep(1)
            return
        waiting = [
            line for line in lines
            if "->" in line and "FLOCK" in line and line.split()[6].endswith(f":{inode}")
        ]
        if len(waiting) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"fewer than {n} processes waited on {lock_path}")


WAIT_FOR_FLOCK = """
import fcntl, sys
with open(sys.argv[1], "rb") as file:
    fcntl.flock(file, fcntl.LOCK_EX)
    print("locked")
"""


def stamp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix not in (".tmp", ".lock")]


class TestConcurrency:
    def test_processes_calling_together_run_each_key_once(self, workers, counter):
        """
        8 processes calling the same 20 keys in the same order, starting at
        once, run each body once.
        """
        keys = [f"k{i}" for i in range(20)]
        workers.env["STRESS_WORK_SECONDS"] = "0.01"
        procs = workers.together(8, "call", *keys)
        reports = [report(proc) for proc in procs]

        assert [[]] * 8 == [r["bad"] for r in reports]
        assert 8 * 20 == sum(r["calls"] for r in reports)
        assert dict.fromkeys(keys, 1) == runs(counter)

    def test_threads_of_many_processes_run_each_key_once(self, workers, counter):
        """
        4 processes of 8 threads each, all calling one key at once, run it once.
        """
        keys = [f"t{i}" for i in range(10)]
        workers.env["STRESS_WORK_SECONDS"] = "0.01"
        procs = workers.together(4, "threads", "8", *keys)
        reports = [report(proc) for proc in procs]

        assert [[]] * 4 == [r["bad"] for r in reports]
        assert 4 * 8 * 10 == sum(r["calls"] for r in reports)
        assert dict.fromkeys(keys, 1) == runs(counter)

    def test_threads_of_one_process_run_once(self, cache):
        """
        A decorated function called from a thread pool runs once per key.
        """
        ran = collections.Counter()
        barrier = threading.Barrier(16)

        @jobstamped(cache_dir=cache, ignore=("ran",))
        def square(x):
            ran[x] += 1
            time.sleep(0.01)  # widen the window the lock must cover
            return x * x

        def call(x):
            barrier.wait()
            return square(x)

        with ThreadPoolExecutor(16) as pool:
            results = [pool.submit(call, i % 4) for i in range(16)]

        assert [(i % 4) ** 2 for i in range(16)] == [r.result() for r in results]
        assert {0: 1, 1: 1, 2: 1, 3: 1} == ran

    def test_killed_holder_is_taken_over(self, workers, cache, counter):
        """
        Callers waiting on a holder killed with SIGKILL take over: one of
        them runs the body, all get its value, and other keys never wait.
        """
        holder = workers.start("hold", "held")
        assert {"entered": "held"} == json.loads(holder.stdout.readline())
        lock = next(cache.rglob("*.lock"))
        waiters = workers.together(8, "call", "held")
        blocked_on(lock, 8)

        other = workers.together(1, "call", "other")[0]
        other_report = report(other)  # done while "held" is still held

        assert holder.poll() is None
        assert {"held": 1, "other": 1} == runs(counter)

        holder.send_signal(signal.SIGKILL)
        reports = [report(proc) for proc in waiters]

        assert {"calls": 1, "bad": []} == other_report
        assert [{"calls": 1, "bad": []}] * 8 == reports
        assert {"held": 2, "other": 1} == runs(counter)
        assert [] == list(cache.rglob("*.lock"))

    def test_forked_child_does_not_keep_the_lock(self, cache):
        """
        A child forked while the lock is held does not hold it once the
        parent releases it, so waiters don't wait for the child.
        """
        store = DirectoryStore(str(cache))
        path = str(cache / "f" / "ab" / "cd" / "stamp")
        store.prepare(path)
        lock = StampLock(path)
        lock.__enter__()
        release_child, child_waits = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: wait, holding whatever it inherited
            try:
                os.close(child_waits)
                os.read(release_child, 1)
            finally:
                os._exit(0)
        try:
            waiter = subprocess.Popen(
                [sys.executable, "-c", WAIT_FOR_FLOCK, path + ".lock"],
                stdout=subprocess.PIPE,
                text=True,
            )
            blocked_on(Path(path + ".lock"), 1)
            lock.__exit__(None, None, None)

            assert "locked" == waiter.communicate(timeout=TIMEOUT)[0].strip()
            assert (0, 0) == os.waitpid(pid, os.WNOHANG)  # the child still runs
        finally:
            os.close(child_waits)
            os.waitpid(pid, 0)
            os.close(release_child)

    def test_cache_clear_waits_for_a_running_job(self, cache):
        """
        `jobstamp cache clear` removes a stamp under its lock: only once the
        job holding it is done.
        """

        @jobstamped(cache_dir=cache)
        def f():
            return 1

        f()
        path = f._jobstamps_job.stamp_path((), {})
        lock = StampLock(path)
        lock.__enter__()
        try:
            clear = subprocess.Popen(
                [sys.executable, "-m", "jobstamps", "cache", "clear", "--all",
                 "--stamp-directory", str(cache)],
                stdout=subprocess.PIPE,
                text=True,
            )
            blocked_on(Path(path + ".lock"), 1)

            assert os.path.exists(path)
        finally:
            lock.__exit__(None, None, None)
        assert clear.communicate(timeout=TIMEOUT)[0].startswith("removed 1 entry")
        assert not os.path.exists(path)
        assert [] == stamp_files(cache)

    def test_hit_takes_no_lock(self, cache):
        """
        A fresh stamp is returned while another caller holds its lock.
        """
        @jobstamped(cache_dir=cache)
        def f(x):
            return x + 1

        assert 2 == f(1)
        lock_path = f._jobstamps_job.stamp_path((1,), {}) + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with ThreadPoolExecutor(1) as pool:
                assert 2 == pool.submit(f, 1).result(timeout=10)
        finally:
            os.close(fd)

    def test_readers_never_see_a_half_written_stamp(self, workers, cache):
        """
        While one process rewrites a stamp, readers see the old or the new
        one, every time.
        """
        path = cache / "f" / "stamp"
        DirectoryStore(str(cache)).save(
            str(path), Stamp(0, 0, (), (), pickle.dumps(expected("0")))
        )
        writer = workers.start("rewrite", str(path), "2")
        readers = [workers.start("read", str(path), "2") for _ in range(3)]
        written = report(writer)
        seen = [report(r) for r in readers]

        assert written["writes"] > 100
        assert [[]] * 3 == [s["bad"] for s in seen]
        assert [0] * 3 == [s["missing"] for s in seen]
        assert all(s["reads"] > 100 for s in seen)


class TestCrashes:
    def test_killed_while_writing_leaves_old_or_new_stamp(self, workers, cache, counter, tmp_path):
        """
        A writer killed with SIGKILL at random moments leaves only stamps that
        read back correctly; its temporary files are ignored, then removed.
        """
        dep = tmp_path / "dep"
        rng = random.Random(2024)
        kills = 25
        for _ in range(kills):
            proc = workers.start("crashwrite", str(dep))
            time.sleep(rng.uniform(0.1, 0.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()

        stamps = stamp_files(cache)
        assert 1 == len(stamps)
        for path in stamps:
            stamp = unpack(path.read_bytes())
            content, payload = pickle.loads(stamp.result)
            assert content * (4_000_000 // len(content)) == payload
        assert runs(counter)["crashjob"] >= kills  # the body did run each time

        leftovers = list(cache.rglob("*.tmp"))
        assert {"ok": True} == report(workers.start("verify", str(dep)))

        hour_ago = time.time() - 3600
        for path in leftovers:
            os.utime(path, (hour_ago, hour_ago))
        dep.write_bytes(b"a last change, so that the next call writes")
        assert {"ok": True} == report(workers.start("verify", str(dep)))
        assert [] == [p for p in leftovers if p.exists()]


def _fresh_process() -> None:
    # Forget what this process remembers of stamps, as a new process would.
    _job._stores.clear()


class TestCorruption:
    @pytest.fixture(name="job")
    def _job(self, cache):
        ran = []

        @jobstamped(cache_dir=cache, ignore=("ran",))
        def f(x):
            ran.append(x)
            return {"x": x, "data": list(range(20))}

        f.ran = ran
        return f

    def check_miss(self, job, caplog, reason: str) -> None:
        caplog.clear()
        before = len(job.ran)
        _fresh_process()

        assert {"x": 1, "data": list(range(20))} == job(1)
        assert before + 1 == len(job.ran)
        assert any(
            "ignoring the stamp" in r.getMessage() and reason in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        path = Path(job._jobstamps_job.stamp_path((1,), {}))
        unpack(path.read_bytes())  # a good stamp again

    def test_every_fault_is_a_logged_miss(self, job, caplog):
        """
        A stamp truncated at every offset, with flipped bytes, empty,
        garbage, or of another format version re-runs and is rewritten.
        """
        caplog.set_level(logging.DEBUG, logger="jobstamps")
        job(1)
        path = Path(job._jobstamps_job.stamp_path((1,), {}))
        good = path.read_bytes()
        faults = 0

        for n in range(len(good)):
            path.write_bytes(good[:n])
            self.check_miss(job, caplog, "bad magic" if n < 16 else "checksum")
            faults += 1

        rng = random.Random(7)
        for _ in range(300):
            data = bytearray(good)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= rng.randint(1, 255)
            path.write_bytes(bytes(data))
            self.check_miss(job, caplog, "")
            faults += 1

        for garbage in [rng.randbytes(n) for n in (1, 15, 16, 100, 5000)]:
            path.write_bytes(garbage)
            self.check_miss(job, caplog, "bad magic")
            faults += 1
        path.write_bytes(good[:16] + rng.randbytes(len(good) - 16))
        self.check_miss(job, caplog, "checksum")

        for version in (0, 1, 2, 3, 255):
            path.write_bytes(good[:7] + bytes([version]) + good[8:])
            self.check_miss(job, caplog, f"format version {version}")
            faults += 1

        # A stamp of format 1, whose checksum did not cover the meta length.
        meta_length = int.from_bytes(good[8:12], "big")
        body = good[12:-4]
        v1 = zlib.crc32(body).to_bytes(4, "big")
        path.write_bytes(b"JOBSTMP\x01" + v1 + meta_length.to_bytes(4, "big") + body)
        self.check_miss(job, caplog, "format version 1")

        assert len(good) + 300 + 5 + 5 == faults

    def test_unloadable_result_is_a_miss(self, cache, caplog):
        """
        A stamp whose pickle no longer loads (say, a renamed class) re-runs.
        """
        caplog.set_level(logging.DEBUG, logger="jobstamps")
        ran = []

        @jobstamped(cache_dir=cache, ignore=("ran",))
        def f():
            ran.append(1)
            return 5

        f()
        path = f._jobstamps_job.stamp_path((), {})
        stamp = DirectoryStore(str(cache)).load(path)
        broken = b"\x80\x05cno_such_module\nthing\n."
        DirectoryStore(str(cache)).save(path, Stamp(stamp.created_ns, 0, (), (), broken))
        _fresh_process()

        assert 5 == f()
        assert 2 == len(ran)
        assert any("can't be unpickled" in r.getMessage() for r in caplog.records)


def _mount_tmpfs(where: Path, options: str) -> bool:
    if not IS_ROOT:
        return False
    where.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True)


class TestUnwritable:
    def assert_one_write_warning(self, record) -> None:
        messages = [str(w.message) for w in record if issubclass(w.category, JobstampsWarning)]
        assert 1 == len(messages), messages
        assert "could not write the stamp" in messages[0]

    def test_disk_full_tmpfs(self, tmp_path):
        """
        On a full disk the fresh result is returned, one warning is given,
        and no file is left behind.
        """
        mount = tmp_path / "small"
        if not _mount_tmpfs(mount, "size=64k,mode=0700"):
            pytest.skip("can't mount a tmpfs here")
        try:
            ran = []

            @jobstamped(cache_dir=mount, ignore=("ran",))
            def big(n):
                ran.append(n)
                return b"x" * n

            for _ in range(2):
                with pytest.warns(JobstampsWarning) as record:
                    assert b"x" * 500_000 == big(500_000)
                self.assert_one_write_warning(record)
            assert 2 == len(ran)
            assert [] == [p for p in mount.rglob("*") if p.is_file()]

            assert b"x" * 10 == big(10)  # small stamps still fit
            assert b"x" * 10 == big(10)
            assert [500_000, 500_000, 10] == ran
        finally:
            _umount(mount)

    def test_disk_full_simulated(self, cache, monkeypatch):
        """
        A write failing with ENOSPC returns the result, warns once, and
        leaves no temporary file.
        """
        real_open = open

        class Full:
            def __init__(self, file):
                self.file = file

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.file.close()

            def close(self):
                self.file.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(_fs, "open", lambda fd, mode: Full(real_open(fd, mode)), raising=False)

        @jobstamped(cache_dir=cache)
        def f():
            return 42

        with pytest.warns(JobstampsWarning) as record:
            assert 42 == f()
        self.assert_one_write_warning(record)
        assert [] == [p for p in cache.rglob("*") if p.is_file()]

    def test_read_only_mount_keeps_the_old_stamp(self, tmp_path):
        """
        A cache dir remounted read-only: the job re-runs, returns its new
        result, warns once, and the old stamp is untouched.
        """
        mount = tmp_path / "ro"
        if not _mount_tmpfs(mount, "size=1m,mode=0700"):
            pytest.skip("can't mount a tmpfs here")
        try:
            dep = tmp_path / "dep"
            dep.write_text("one")

            @jobstamped(cache_dir=mount, dependencies=[dep], method=HashMethod)
            def read():
                return dep.read_text()

            assert "one" == read()
            [stamp] = stamp_files(mount)
            old = stamp.read_bytes()
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            dep.write_text("two")
            _fresh_process()

            with pytest.warns(JobstampsWarning) as record:
                assert "two" == read()
            self.assert_one_write_warning(record)
            assert old == stamp.read_bytes()
            assert [stamp] == stamp_files(mount)
        finally:
            _umount(mount)

    def test_read_only_dir(self, tmp_path, monkeypatch):
        """
        A cache dir that can't be created in returns the result, warning once.
        """
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
        if IS_ROOT:  # chmod does not stop root
            real_mkdir = os.mkdir

            def read_only(name, *args, **kwargs):
                if str(name).startswith(str(cache)) and str(name) != str(cache):
                    raise OSError(errno.EROFS, "Read-only file system", name)
                return real_mkdir(name, *args, **kwargs)

            monkeypatch.setattr(os, "mkdir", read_only)

        @jobstamped(cache_dir=cache)
        def f():
            return "fresh"

        with pytest.warns(JobstampsWarning) as record:
            assert "fresh" == f()
        self.assert_one_write_warning(record)
        assert [] == list(cache.iterdir())


class TestUnpicklable:
    def test_warns_and_returns_it(self, cache):
        """
        A result that can't be pickled is returned, unstamped, with one warning.
        """
        lock = threading.Lock()

        @jobstamped(cache_dir=cache, ignore=("lock",))
        def f():
            return lock

        with pytest.warns(JobstampsWarning, match="can't be pickled") as record:
            assert lock is f()
        assert 1 == len(record)
        assert [] == stamp_files(cache)

    def test_strict_raises_a_clear_type_error(self, cache):
        """
        With strict=True it raises UnpicklableResultError, a TypeError,
        without pickle's traceback chained to it.
        """
        @jobstamped(cache_dir=cache, strict=True)
        def f():
            return lambda: None

        with pytest.raises(UnpicklableResultError, match=r"result of .*f can.t be pickled") as e:
            f()

        assert isinstance(e.value, TypeError)
        assert e.value.__cause__ is None and e.value.__suppress_context__
        assert [] == stamp_files(cache)


class TestHostileDirectories:
    def test_world_writable_without_sticky_bit_is_refused(self, tmp_path):
        """
        Stamps are never loaded from a directory everyone can write, so a
        planted stamp does not run.
        """
        cache = tmp_path / "open"
        cache.mkdir()
        planted = tmp_path / "planted-ran"

        @jobstamped(cache_dir=cache)
        def f():
            return 1

        class Plant:
            def __reduce__(self):
                return (os.mkdir, (str(planted),))

        DirectoryStore(str(cache)).save(
            f._jobstamps_job.stamp_path((), {}), Stamp(0, 0, (), (), pickle.dumps(Plant()))
        )
        os.chmod(cache, 0o777)

        with pytest.raises(UnsafeCacheDirError, match="writable by every user") as e:
            f()
        with pytest.raises(UnsafeCacheDirError):
            f.out_of_date()

        assert isinstance(e.value, CacheDirError)
        assert isinstance(e.value, PermissionError)
        assert str(cache) == e.value.filename
        assert not planted.exists()

    def test_world_writable_with_sticky_bit_is_allowed(self, tmp_path):
        """
        A shared directory with the sticky bit, like /tmp, is accepted.
        """
        cache = tmp_path / "sticky"
        cache.mkdir()
        os.chmod(cache, 0o777 | stat.S_ISVTX)

        @jobstamped(cache_dir=cache)
        def f():
            return 1

        assert 1 == f()
        assert 1 == f()
        assert None is f.out_of_date()

    @pytest.mark.skipif(not IS_ROOT, reason="only root can give a directory away")
    def test_owned_by_another_user_is_refused(self, tmp_path):
        """
        A cache dir owned by another user is refused.
        """
        cache = tmp_path / "theirs"
        cache.mkdir(mode=0o700)
        os.chown(cache, 65534, 65534)

        @jobstamped(cache_dir=cache)
        def f():
            return 1

        with pytest.raises(UnsafeCacheDirError, match="owned by another user"):
            f()

    @pytest.mark.skipif(not IS_ROOT, reason="only root can give a directory away")
    def test_planted_function_folder_in_a_sticky_dir_is_refused(self, tmp_path):
        """
        In a shared directory like /tmp, a function folder that another user
        created first is refused, even though the directory itself is fine.
        """
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777 | stat.S_ISVTX)

        @jobstamped(cache_dir=shared)
        def f():
            return 1

        folder = Path(f._jobstamps_job.stamp_path((), {})).parents[2]
        folder.mkdir()
        os.chmod(folder, 0o777)
        os.chown(folder, 65534, 65534)

        with pytest.raises(UnsafeCacheDirError, match="owned by another user") as e:
            f()
        assert str(folder) == e.value.filename

        os.chown(folder, os.getuid(), os.getgid())
        os.chmod(folder, 0o700)
        _fresh_process()
        assert 1 == f()

    @pytest.mark.skipif(not IS_ROOT, reason="only root can give a file away")
    def test_foreign_stamp_in_a_sticky_dir_is_refused(self, tmp_path):
        """
        In a shared directory, a stamp owned by another user is refused, and
        a function folder removed by clear() is checked again when recreated.
        """
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777 | stat.S_ISVTX)

        @jobstamped(cache_dir=shared)
        def f():
            return 1

        assert 1 == f()
        stamp = Path(f._jobstamps_job.stamp_path((), {}))
        os.chown(stamp, 65534, 65534)
        with pytest.raises(UnsafeCacheDirError, match="a stamp that is owned by another user"):
            f()

        f.clear()
        folder = stamp.parents[2]
        folder.mkdir(mode=0o777)
        os.chown(folder, 65534, 65534)
        with pytest.raises(UnsafeCacheDirError, match="a directory that is owned by another user"):
            f()

    def test_default_cache_dir_is_private(self, tmp_path, monkeypatch):
        """
        The default cache dir is created 0700.
        """
        monkeypatch.delenv("JOBSTAMPS_CACHE_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

        @jobstamped
        def f():
            return 1

        assert 1 == f()
        assert 0o700 == stat.S_IMODE(os.stat(tmp_path / "xdg" / "jobstamps").st_mode)


class TestPaths:
    def test_symlinked_dependency_follows_its_target(self, cache, tmp_path):
        """
        A change of a symlink's target, or of where it points, is a change.
        """
        one, two = tmp_path / "one", tmp_path / "two"
        one.write_text("1")
        two.write_text("22")
        link = tmp_path / "link"
        link.symlink_to(one)
        ran = []

        @jobstamped(cache_dir=cache, dependencies=[link], ignore=("ran",))
        def f():
            ran.append(1)
            return link.read_text()

        assert "1" == f()
        assert "1" == f()
        one.write_text("111")
        assert "111" == f()
        link.unlink()
        link.symlink_to(two)
        assert "22" == f()
        assert 3 == len(ran)

    def test_directory_dependency_is_a_clear_error(self, cache, tmp_path):
        """
        A dependency that is a directory raises IsADirectoryError.
        """
        @jobstamped(cache_dir=cache, dependencies=[tmp_path])
        def f():
            return 1

        with pytest.raises(IsADirectoryError, match="must be files") as e:
            f()
        assert str(tmp_path) == e.value.filename


class TestBadInput:
    def test_non_path_dependency(self, cache):
        """
        A dependency that is not a path is refused at decoration.
        """
        with pytest.raises(TypeError, match="dependencies must hold paths"):
            jobstamped(cache_dir=cache, dependencies=["a", 1])(lambda: 1)

    def test_single_path_dependency(self, cache):
        """
        A lone path where a list belongs is refused, not split into letters.
        """
        with pytest.raises(TypeError, match="dependencies must be an iterable of paths"):
            jobstamped(cache_dir=cache, dependencies="a.txt")(lambda: 1)

    def test_non_path_output(self, cache):
        """
        An output that is not a path is refused at decoration.
        """
        with pytest.raises(TypeError, match="outputs must hold paths"):
            jobstamped(cache_dir=cache, outputs=[None])(lambda: 1)

    def test_dependencies_callable_that_raises(self, cache):
        """
        An error raised by the dependencies callable passes through, with a note naming it.
        """
        def deps():
            raise LookupError("no such file list")

        f = jobstamped(cache_dir=cache, dependencies=deps)(lambda: 1)
        with pytest.raises(LookupError) as e:
            f()
        assert any("dependencies callable" in note for note in e.value.__notes__)

    def test_dependencies_callable_returning_a_non_iterable(self, cache):
        """
        A dependencies callable that returns no iterable is a TypeError naming it.
        """
        f = jobstamped(cache_dir=cache, dependencies=lambda: 5)(lambda: 1)
        with pytest.raises(TypeError, match="the dependencies callable's result must be an iterable"):
            f()

    def test_method_without_the_protocol(self, cache):
        """
        A method without fingerprint() and check() is refused.
        """
        with pytest.raises(TypeError, match=r"method=.* is not a jobstamps Method"):
            jobstamped(cache_dir=cache, method=object())(lambda: 1)

    def test_method_class_needing_arguments(self, cache):
        """
        A method class that needs arguments is refused, asking for an instance.
        """
        class Needy:
            def __init__(self, x):
                pass

        with pytest.raises(TypeError, match=r"method=.*Needy must be constructible"):
            jobstamped(cache_dir=cache, method=Needy)(lambda: 1)

    def test_cache_dir_not_a_path(self):
        """
        A cache_dir that is not a path is refused.
        """
        with pytest.raises(TypeError, match="cache_dir must be a path"):
            jobstamped(cache_dir=3)(lambda: 1)
