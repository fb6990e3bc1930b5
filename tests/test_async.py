"""
``async def`` functions under ``@jobstamped``: hits without running, one
run shared by concurrent awaits, and the stamp's lock waited for without
holding up the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from jobstamps import JobstampedFunction, Stats, jobstamped
from jobstamps._decorator import AsyncJobstampedFunction


def run(coroutine, timeout=30):
    """
    asyncio.run(coroutine), failing instead of hanging after *timeout* seconds.
    """
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture(name="counted")
def _counted():
    """
    An async stamped function that records its runs: (job, runs).
    """
    runs = []

    @jobstamped(ignore=("runs",))
    async def job(x):
        runs.append(x)
        await asyncio.sleep(0.05)
        return [x, "done"]

    return job, runs


class TestCalls:
    def test_a_hit_does_not_run_the_body(self, counted):
        """await f(x) returns the stamped result on a hit without running."""
        job, runs = counted

        async def main():
            return [await job(1), await job(1)]

        assert [[1, "done"], [1, "done"]] == run(main())
        assert [1] == runs
        assert isinstance(job, AsyncJobstampedFunction)
        assert isinstance(job, JobstampedFunction)

    def test_calls_are_awaitables(self, counted):
        """A call returns a coroutine, run only when awaited."""
        job, runs = counted
        pending = job(1)

        assert asyncio.iscoroutine(pending)
        assert [] == runs
        assert [1, "done"] == run(pending)

    def test_ten_awaits_of_one_key_share_one_run(self, counted):
        """asyncio.gather of ten awaits of one key runs the body once."""
        job, runs = counted

        async def main():
            return await asyncio.gather(*(job(7) for _ in range(10)))

        results = run(main())

        assert [[7, "done"]] * 10 == results
        assert 10 == len({id(r) for r in results})  # no caller shares an object
        assert [7] == runs
        assert (9, 1, 1) == (job.stats().hits, job.stats().misses, job.stats().runs)

    def test_other_keys_run_side_by_side(self, counted):
        """Awaits of other keys don't wait for each other."""
        job, runs = counted

        async def main():
            return await asyncio.gather(*(job(x) for x in range(5)))

        assert [[x, "done"] for x in range(5)] == run(main())
        assert [0, 1, 2, 3, 4] == sorted(runs)

    def test_refresh_is_awaitable_and_runs(self, counted):
        """await f.refresh(x) runs even when fresh, and stamps its result."""
        job, runs = counted

        async def main():
            await job(1)
            return await job.refresh(1)

        assert [1, "done"] == run(main())
        assert [1, 1] == runs

    def test_sync_methods_stay_sync(self, counted, cache_dir):
        """out_of_date, key, clear and stats are plain calls."""
        job, _ = counted
        path = job._jobstamps_job.stamp_path((1,), {})

        assert path == job.out_of_date(1)
        run(job(1))
        assert job.out_of_date(1) is None
        assert job.key(1).digest == os.path.basename(path)
        assert isinstance(job.stats(), Stats)
        assert 1 == job.clear()

    def test_exceptions_are_shared_and_stamp_nothing(self):
        """When the shared run raises, every await raises it; nothing is stamped."""
        runs = []

        @jobstamped(ignore=("runs",))
        async def broken():
            runs.append(1)
            await asyncio.sleep(0.02)
            raise KeyError("no")

        async def main():
            return await asyncio.gather(*(broken() for _ in range(4)), return_exceptions=True)

        errors = run(main())

        assert 4 == sum(isinstance(e, KeyError) for e in errors)
        assert [1] == runs
        assert broken.out_of_date() is not None

    def test_cache_if(self):
        """cache_if is given the awaited result; refused, it is shared but not stamped."""
        runs = []

        @jobstamped(cache_if=lambda r: r > 0, ignore=("runs",))
        async def f(x):
            runs.append(x)
            await asyncio.sleep(0.02)
            return x

        async def main():
            first = await asyncio.gather(f(-1), f(-1), f(-1))
            return first, await f(-1), await f(2), await f(2)

        assert ([-1, -1, -1], -1, 2, 2) == run(main())
        assert [-1, -1, 2] == runs

    def test_a_cancelled_run_lets_a_waiter_run(self):
        """If the task running the body is cancelled, a waiter runs it instead."""
        runs = []

        @jobstamped(ignore=("runs", "gate"))
        async def f():
            runs.append(1)
            await gate.wait()
            return "ok"

        async def main():
            nonlocal gate
            gate = asyncio.Event()
            owner = asyncio.create_task(f())
            while not runs:  # the owner is running the body
                await asyncio.sleep(0.001)
            waiter = asyncio.create_task(f())
            await asyncio.sleep(0.01)
            owner.cancel()
            while len(runs) < 2:  # the waiter runs it instead
                await asyncio.sleep(0.001)
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await owner
            return await waiter

        gate = None
        assert "ok" == run(main())
        assert [1, 1] == runs
        assert f.out_of_date() is None

    def test_its_own_stamp_from_its_run_does_not_wait(self):
        """A body that awaits its own stamp again (same task) runs it instead of waiting for itself."""
        calls = []

        @jobstamped(ignore=("inner", "calls"))
        async def f(x, inner=False):
            calls.append(inner)
            if not inner:
                return await f(x, inner=True) + 1
            return 1

        assert 2 == run(f(1), timeout=10)
        assert [False, True] == calls

    def test_methods(self):
        """An async method is stamped per object, and awaited like the method."""

        class Client:
            def __init__(self, name):
                self.name = name

            def __repr__(self):
                return f"Client({self.name!r})"

            @jobstamped
            async def fetch(self, x):
                return f"{self.name}:{x}"

        async def main():
            return await Client("a").fetch(1), await Client("b").fetch(1)

        assert ("a:1", "b:1") == run(main())

    def test_ttl_and_env(self, monkeypatch):
        """ttl and env work for async functions as for others."""
        runs = []

        @jobstamped(ttl=60, env=("MODE",), ignore=("runs",))
        async def f():
            runs.append(os.environ.get("MODE"))
            return 1

        monkeypatch.setenv("MODE", "a")
        run(f())
        run(f())
        monkeypatch.setenv("MODE", "b")
        run(f())

        assert ["a", "b"] == runs

    def test_disabled_awaits_the_body(self, counted, monkeypatch):
        """With JOBSTAMPS_DISABLED every await runs the body."""
        job, runs = counted
        monkeypatch.setenv("JOBSTAMPS_DISABLED", "1")

        run(job(1))
        run(job(1))

        assert [1, 1] == runs

    def test_stacked(self):
        """@jobstamped over a stamped async def is awaitable too."""
        runs = []

        @jobstamped(version=2)
        @jobstamped(ignore=("runs",))
        async def f(x):
            runs.append(x)
            return x

        assert isinstance(f, AsyncJobstampedFunction)
        assert 3 == run(f(3))
        assert 3 == run(f(3))
        assert [3] == runs


MODULE = """\
import asyncio, os

from jobstamps import jobstamped

RUNS = os.environ["ASYNC_RUNS"]
GO = os.environ["ASYNC_GO"]


@jobstamped
async def job(x):
    with open(RUNS, "a") as f:
        f.write(f"{os.getpid()}\\n")
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    return x * 2
"""


class TestAcrossProcesses:
    def test_waiting_for_another_process_keeps_the_loop_running(self, tmp_path, monkeypatch):
        """
        While another process runs a stamp, an await of it waits without
        blocking the loop or using its default executor, then returns that
        process's result without running.
        """
        (tmp_path / "asyncjob.py").write_text(MODULE)
        runs, go = tmp_path / "runs", tmp_path / "go"
        monkeypatch.setenv("ASYNC_RUNS", str(runs))
        monkeypatch.setenv("ASYNC_GO", str(go))
        monkeypatch.syspath_prepend(str(tmp_path))
        other = subprocess.Popen(
            [sys.executable, "-c", "import asyncio, asyncjob; print(asyncio.run(asyncjob.job(21)))"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
        )
        try:
            while not runs.exists():  # the other process holds the lock
                assert other.poll() is None
                threading.Event().wait(0.01)
            import asyncjob

            released = threading.Event()

            async def main():
                loop = asyncio.get_running_loop()
                # One worker, kept busy the whole time: an await that needed
                # the default executor would never finish.
                loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
                busy = loop.run_in_executor(None, released.wait)
                try:
                    ticks = 0
                    call = asyncio.create_task(asyncjob.job(21))
                    while ticks < 20:
                        await asyncio.sleep(0.01)
                        ticks += 1
                    assert not call.done()
                    go.write_text("")
                    result = await asyncio.wait_for(call, 10)
                finally:
                    released.set()
                await busy
                return result, ticks

            assert (42, 20) == run(main())
            assert 0 == other.wait(30)
            assert b"42\n" == other.stdout.read()
            assert 1 == len(runs.read_text().splitlines())
        finally:
            go.write_text("")
            other.wait(30)
            other.stdout.close()

    def test_the_lock_is_released_when_the_await_is_cancelled(self, tmp_path):
        """An await cancelled while waiting for the lock leaves no lock held once it gets it."""
        from jobstamps._lock import StampLock

        @jobstamped(cache_dir=tmp_path / "c")
        async def job():
            return 1

        path = job._jobstamps_job.stamp_path((), {})
        os.makedirs(os.path.dirname(path))
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    f"""\
                    import sys
                    from jobstamps._lock import StampLock
                    with StampLock({path!r}):
                        print("locked", flush=True)
                        sys.stdin.read()
                    """
                ),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert b"locked\n" == holder.stdout.readline()

        async def main():
            call = asyncio.create_task(job())
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            holder.stdin.close()  # the other process lets go now

        run(main())
        assert 0 == holder.wait(30)
        holder.stdout.close()
        got = threading.Event()

        def take():
            with StampLock(path):
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        taker.join(30)

        assert got.is_set()
        assert 1 == run(job())
