"""
Leases: one run per stamp across machines, through a remote store that can
hold them, bounded by a time-to-live and a wait, never in the way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest
import redis

from jobstamps import HashMethod, MTimeMethod, jobstamped
from jobstamps._lease import MAX_POLL
from jobstamps.exceptions import JobstampsWarning
from jobstamps.remote import _common, open_remote
from jobstamps.remote._common import has_leases
from jobstamps.remote._guard import GuardedLeasingStore, GuardedStore, guarded
from jobstamps.remote._redis import LEASE_PREFIX, RedisStore
from jobstamps.remote._sealed import SealedLeasingStore, SealedStore

from .loopback import free_port

SECRET = "a secret shared by the CI machines"
KEY = "tests.f-0123456789abcdef/" + "ab" * 32


@pytest.fixture(autouse=True)
def _reset():
    """
    Every store may warn again.
    """
    _common._warned.clear()
    yield
    _common._warned.clear()


@pytest.fixture(name="client")
def _client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


class TestRedisLeases:
    def test_one_holder(self, redis_url, prefix):
        """A lease has one holder: others can't take, renew or release it."""
        store = RedisStore(redis_url, prefix=prefix)

        taken = store.acquire_lease(KEY, "a", 30)
        again = store.acquire_lease(KEY, "b", 30)
        renewed_by_other = store.renew_lease(KEY, "b", 30)
        store.release_lease(KEY, "b")
        holder = store.lease_holder(KEY)
        store.close()

        assert (True, False, False) == (taken, again, renewed_by_other)
        assert "a" == holder

    def test_release_frees(self, redis_url, prefix):
        """Released by its holder, a lease can be taken by another; renewing it then fails."""
        store = RedisStore(redis_url, prefix=prefix)
        store.acquire_lease(KEY, "a", 30)

        store.release_lease(KEY, "a")
        free = store.lease_holder(KEY)
        renewed_after_release = store.renew_lease(KEY, "a", 30)
        taken = store.acquire_lease(KEY, "b", 30)
        store.close()

        assert (None, False, True) == (free, renewed_after_release, taken)

    def test_ttl_and_renewal(self, redis_url, prefix, client):
        """A lease expires after its time-to-live; renewing restarts it."""
        store = RedisStore(redis_url, prefix=prefix)
        name = prefix + LEASE_PREFIX + KEY

        store.acquire_lease(KEY, "a", 2.5)
        first = client.pttl(name)
        renewed = store.renew_lease(KEY, "a", 60)
        second = client.pttl(name)
        client.pexpire(name, 1)
        time.sleep(0.01)
        expired = store.lease_holder(KEY)
        store.close()

        assert 2000 < first <= 2500
        assert renewed
        assert 59_000 < second <= 60_000
        assert None is expired

    def test_apart_from_entries(self, redis_url, prefix):
        """A lease and the entry of the same key don't touch each other."""
        store = RedisStore(redis_url, prefix=prefix)
        store.put(KEY, b"stamp")

        taken = store.acquire_lease(KEY, "a", 30)
        entry = store.get(KEY)
        store.release_lease(KEY, "a")
        after = store.get(KEY)
        store.delete(KEY)
        holder = store.lease_holder(KEY)
        store.acquire_lease(KEY, "b", 30)
        store.close()

        assert taken
        assert b"stamp" == entry == after
        assert None is holder


class TestLayers:
    def test_redis_has_leases_through_its_layers(self, redis_url, prefix):
        """open_remote of a Redis URL holds leases, signed and guarded."""
        store = open_remote(redis_url, secret=SECRET, prefix=prefix)

        taken = store.acquire_lease(KEY, "a", 30)
        holder = store.lease_holder(KEY)
        store.release_lease(KEY, "a")
        store.close()

        assert isinstance(store, SealedLeasingStore)
        assert isinstance(store.inner, GuardedLeasingStore)
        assert has_leases(store)
        assert (True, "a") == (taken, holder)

    def test_fsspec_has_none(self):
        """An fsspec store holds no leases, and neither do its layers."""
        store = open_remote("memory://jobstamps-test-leases", secret=SECRET)

        assert type(store) is SealedStore
        assert type(store.inner) is GuardedStore
        assert not has_leases(store)

    def test_down_grants_the_lease(self):
        """A remote that is down grants every lease and names no holder, with one warning."""
        store = guarded(RedisStore(f"redis://127.0.0.1:{free_port()}/0"))

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            answers = (
                store.acquire_lease(KEY, "a", 30),
                store.renew_lease(KEY, "a", 30),
                store.release_lease(KEY, "a"),
                store.lease_holder(KEY),
            )
        store.close()

        assert (True, True, None, None) == answers
        assert 1 == sum(issubclass(w.category, JobstampsWarning) for w in record)


def eventually(predicate, timeout=10.0):
    """
    Wait until *predicate()* is true; fail after *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Background:
    """
    *func()* running in a thread of its own; :meth:`outcome` is what it
    returned, or raises what it raised.
    """

    def __init__(self, func):
        self._outcome = []
        self._thread = threading.Thread(target=self._run, args=(func,), daemon=True)
        self._thread.start()

    def _run(self, func):
        try:
            self._outcome.append((True, func()))
        except BaseException as e:
            self._outcome.append((False, e))

    @property
    def done(self):
        return bool(self._outcome)

    def outcome(self, timeout=10.0):
        self._thread.join(timeout)
        assert self._outcome, "still running"
        succeeded, value = self._outcome[0]
        if not succeeded:
            raise value
        return value


class Fleet:
    """
    Machines in one process: each its own checkout and cache directory, all
    sharing one remote store (and its breaker).
    """

    def __init__(self, base, remote):
        self.base = base
        self.remote = remote

    def machine(self, name, func, schema="id: int\n", **options):
        checkout = self.base / name
        checkout.mkdir()
        (checkout / "schema.txt").write_text(schema)
        options.setdefault("method", HashMethod)
        return jobstamped(
            dependencies=[checkout / "schema.txt"],
            store=self.remote,
            cache_dir=self.base / f"{name}-cache",
            root=checkout,
            **options,
        )(func)


@pytest.fixture(name="remote")
def _remote(redis_url, prefix):
    store = open_remote(redis_url, secret=SECRET, prefix=prefix)
    yield store
    store.close()


@pytest.fixture(name="fleet")
def _fleet(tmp_path, remote):
    return Fleet(tmp_path, remote)


@pytest.fixture(name="log")
def _log(caplog):
    """
    The jobstamps debug log, as one string.
    """
    caplog.set_level(logging.DEBUG, logger="jobstamps")
    return lambda: "\n".join(r.getMessage() for r in caplog.records)


# What a Holder's job closes over, and is not its identity.
HELD = ("self", "machine")


class Holder:
    """
    One job for every machine: it returns its argument and the name of the
    machine that ran it. Run by machine "a", it blocks until let go.
    """

    def __init__(self, watch=None, together=()):
        self.runs = []
        # Machines whose jobs wait for each other to start (for a while).
        self._together = {name: threading.Event() for name in together}
        # What watch() returned in each run, when given.
        self.watched = []
        self._watch = watch
        self.started = threading.Event()
        self._go = threading.Event()
        self._fail = None

    def body(self, machine):
        def job(x):
            self.runs.append(machine)
            if self._watch is not None:
                self.watched.append(self._watch())
            if machine == "a":
                self.started.set()
                assert self._go.wait(20), "never let go"
            if machine in self._together:
                self._together[machine].set()
                for other in self._together.values():
                    other.wait(5)
            if self._fail == machine:
                raise RuntimeError("the holder failed")
            return (x, machine)

        return job

    def let_go(self, fail=None):
        """
        Let machine "a" finish; the job of machine *fail* raises.
        """
        self._fail = fail
        self._go.set()


def lease_keys(client, prefix, failed=False):
    """
    The leases held under *prefix*, and their owners; with *failed*, the
    marks of holders that ended without a stamp instead.
    """
    keys = client.keys(f"{prefix}lease:*")
    return {
        k.decode(): client.get(k).decode()
        for k in keys
        if k.endswith(b"/failed") == failed
    }


class TestOneRunAcrossMachines:
    def test_waiter_returns_the_holders_stamp(self, fleet, log):
        """A machine that misses while another runs the job waits, and returns its stamp without running."""
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        second = Background(lambda: b(1))
        eventually(lambda: "waiting up to 300 s" in log())
        holder.let_go()

        assert (1, "a") == first.outcome() == second.outcome()
        assert ["a"] == holder.runs
        owner = f"{socket.gethostname()}:{os.getpid()}:"
        assert f"took the lease in {fleet.remote.url} as {owner}" in log()
        assert re.search(rf"hit after waiting \d+\.\d\d s for {re.escape(owner)}", log())

    def test_waits_are_counted(self, fleet, log):
        """A call that waited for another machine's run counts as a hit with one lease wait and its time, not as a run."""
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        second = Background(lambda: b(1))
        eventually(lambda: "waiting up to 300 s" in log())
        holder.let_go()
        first.outcome(), second.outcome()
        waited, ran = b.stats(), a.stats()

        assert (1, 0, 0, 1) == (waited.hits, waited.misses, waited.runs, waited.lease_waits)
        assert waited.time_waited > 0
        assert (0, 1, 1, 0) == (ran.hits, ran.misses, ran.runs, ran.lease_waits)

    def test_holder_that_fails_lets_its_waiters_run(self, fleet, log, client, prefix):
        """A holder whose job raises releases its lease at once, and its waiters all run the job together."""
        holder = Holder(together=("b", "c"))
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)
        c = fleet.machine("c", holder.body("c"), ignore=HELD)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        waiters = [Background(lambda: b(1)), Background(lambda: c(1))]
        eventually(lambda: 2 == log().count("waiting up to"))
        holder.let_go(fail="a")

        with pytest.raises(RuntimeError, match="the holder failed"):
            first.outcome()
        assert [(1, "b"), (1, "c")] == [w.outcome() for w in waiters]
        assert ["a", "b", "c"] == sorted(holder.runs)
        assert "with no stamp: its waiters run at once" in log()
        assert 2 == log().count("ended without a stamp")
        assert {} == lease_keys(client, prefix)
        assert 1 == len(lease_keys(client, prefix, failed=True))

    def test_holder_slower_than_its_ttl_renews(self, fleet, log, monkeypatch):
        """A job that outlasts several lease TTLs keeps its lease: nobody runs it twice."""
        monkeypatch.setenv("JOBSTAMPS_LEASE_TTL", "0.3")
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        second = Background(lambda: b(1))
        eventually(lambda: "waiting up to" in log())
        time.sleep(1.2)  # four TTLs: only renewals keep the lease
        holder.let_go()

        assert (1, "a") == first.outcome() == second.outcome()
        assert ["a"] == holder.runs

    @pytest.mark.parametrize("how", ["argument", "environment"])
    def test_no_waiting(self, fleet, log, monkeypatch, how):
        """With lease_wait=0 (or JOBSTAMPS_LEASE_WAIT=0) a machine runs at once while another holds the lease."""
        options = {"lease_wait": 0} if how == "argument" else {}
        if how == "environment":
            monkeypatch.setenv("JOBSTAMPS_LEASE_WAIT", "0")
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD, **options)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        assert (1, "b") == b(1)
        still_holding = not first.done
        holder.let_go()

        assert still_holding
        assert ["a", "b"] == holder.runs
        assert (1, "a") == first.outcome()
        assert "running without waiting (lease_wait is 0)" in log()

    def test_waits_no_longer_than_lease_wait(self, fleet, log):
        """A machine stops waiting after lease_wait seconds, and runs the job itself."""
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD, lease_wait=0.3)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        assert (1, "b") == b(1)
        still_holding = not first.done
        holder.let_go()
        first.outcome()

        assert still_holding
        waited = re.search(r"running after waiting (\d+\.\d\d) s for .*, as long as lease_wait allows", log())
        assert 0.3 <= float(waited.group(1))

    @pytest.mark.parametrize("option", ["lease=False", "other contents"])
    def test_runs_at_once(self, fleet, client, prefix, option):
        """With lease=False, or other dependency contents, a machine neither waits for the holder nor holds a lease."""
        holder = Holder(watch=lambda: lease_keys(client, prefix))
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        if option == "lease=False":
            b = fleet.machine("b", holder.body("b"), ignore=HELD, lease=False)
        else:
            b = fleet.machine("b", holder.body("b"), ignore=HELD, schema="id: str\n")

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        assert (1, "b") == b(1)
        still_holding = not first.done
        holder.let_go()
        first.outcome()

        assert still_holding
        assert ["a", "b"] == holder.runs
        held_by_a, during_b = holder.watched
        assert 1 == len(held_by_a)
        assert (1 if option == "lease=False" else 2) == len(during_b)

    @pytest.mark.parametrize(
        ("method", "leases"), [(HashMethod, 1), (MTimeMethod, 0)], ids=["hash", "mtime"]
    )
    def test_who_holds_the_lease(self, fleet, client, prefix, method, leases):
        """A shared stamp's run holds its lease, named by host and process; an MTime stamp's run takes none."""
        seen = []

        def job(x):
            seen.append(lease_keys(client, prefix))
            return x

        f = fleet.machine("a", job, method=method, ignore=("client", "prefix", "seen"))
        assert 1 == f(1)

        assert leases == len(seen[0])
        for key, owner in seen[0].items():
            assert key.startswith(f"{prefix}lease:")
            assert owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")
        assert {} == lease_keys(client, prefix)

    def test_interrupted_holder_releases(self, fleet, client, prefix):
        """A holder interrupted by Ctrl-C releases its lease on the way out, saying it has no stamp."""
        seen = []

        def job(x):
            seen.append(lease_keys(client, prefix))
            raise KeyboardInterrupt

        f = fleet.machine("a", job, ignore=("client", "prefix", "seen"))
        with pytest.raises(KeyboardInterrupt):
            f(1)

        assert 1 == len(seen[0])
        assert {} == lease_keys(client, prefix)
        assert list(seen[0].values()) == list(lease_keys(client, prefix, failed=True).values())

    def test_store_without_leases_runs_at_once(self, tmp_path):
        """A store that holds no leases (fsspec) shares stamps as before, and nobody waits."""
        fleet = Fleet(tmp_path, open_remote("memory://jobstamps-test-no-leases", secret=SECRET))
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)

        first = Background(lambda: a(1))
        assert holder.started.wait(10)
        assert (1, "b") == b(1)
        holder.let_go()

        assert (1, "a") == first.outcome()
        assert ["a", "b"] == holder.runs


class AsyncHolder(Holder):
    """
    A Holder whose jobs are ``async def`` (closing over the plain job, which
    is not their identity).
    """

    def body(self, machine):
        job = super().body(machine)

        async def ajob(x):
            return job(x)

        return ajob


class TestAsync:
    def test_waiter_awaits_the_holders_stamp(self, fleet, log):
        """An await that misses while another machine runs the job waits for it, with the event loop running on, and returns its stamp without running."""
        holder = AsyncHolder()
        a = fleet.machine("a", holder.body("a"), ignore=("job",))
        b = fleet.machine("b", holder.body("b"), ignore=("job",))
        first = Background(lambda: asyncio.run(a(1)))
        assert holder.started.wait(10)
        ticks = []

        async def waiter():
            async def tick():
                while True:
                    ticks.append(1)
                    await asyncio.sleep(0.01)

                    if "waiting up to 300 s" in log() and len(ticks) == 5:
                        holder.let_go()

            ticking = asyncio.ensure_future(tick())
            try:
                return await b(1)
            finally:
                ticking.cancel()

        assert (1, "a") == asyncio.run(waiter())
        assert (1, "a") == first.outcome()
        assert ["a"] == holder.runs
        assert 5 <= len(ticks)
        assert re.search(r"hit after waiting \d+\.\d\d s", log())
        waited, ran = b.stats(), a.stats()
        assert (1, 0, 1) == (waited.hits, waited.runs, waited.lease_waits)
        assert (0, 1, 0) == (ran.hits, ran.runs, ran.lease_waits)

    def test_holder_holds_and_releases(self, fleet, client, prefix):
        """An async job on a miss holds the stamp's lease while it runs, and releases it once its stamp is published."""
        seen = []

        async def job(x):
            seen.append(lease_keys(client, prefix))
            return x

        f = fleet.machine("a", job, ignore=("client", "prefix", "seen"))
        assert 1 == asyncio.run(f(1))

        assert 1 == len(seen[0])
        assert {} == lease_keys(client, prefix)
        assert {} == lease_keys(client, prefix, failed=True)

    def test_cancelled_waiter_holds_no_lease(self, fleet, log, client, prefix):
        """An await cancelled while it waits leaves no lease behind, even one it could only take after it was cancelled."""
        holder = AsyncHolder()
        a = fleet.machine("a", holder.body("a"), ignore=("job",))
        b = fleet.machine("b", holder.body("b"), ignore=("job",))
        first = Background(lambda: asyncio.run(a(1)))
        assert holder.started.wait(10)
        (held_by_a,) = lease_keys(client, prefix)

        async def give_up():
            waiting = asyncio.ensure_future(b(1))
            while "waiting up to 300 s" not in log():
                await asyncio.sleep(0.005)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting

        asyncio.run(give_up())
        # As if "a" had died: its lease expires, and the cancelled waiter's
        # thread takes it over, then gives it up at once.
        client.delete(held_by_a)
        eventually(lambda: "with no stamp: its waiters run at once" in log())
        eventually(lambda: {} == lease_keys(client, prefix))
        holder.let_go()

        assert (1, "a") == first.outcome()
        assert ["a"] == holder.runs
        assert 1 == len(lease_keys(client, prefix, failed=True))


class TestRemoteFailures:
    def test_remote_killed_while_waiting(self, tmp_path, redis_server, log):
        """A remote that dies while machines wait for a holder: they run locally at once, with one warning."""
        remote = open_remote(redis_server.url, secret=SECRET)
        fleet = Fleet(tmp_path, remote)
        holder = Holder()
        a = fleet.machine("a", holder.body("a"), ignore=HELD)
        b = fleet.machine("b", holder.body("b"), ignore=HELD)

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            first = Background(lambda: a(1))
            assert holder.started.wait(10)
            second = Background(lambda: b(1))
            eventually(lambda: "waiting up to 300 s" in log())
            redis_server.stop()
            killed = time.monotonic()
            assert (1, "b") == second.outcome(timeout=30)
            waited = time.monotonic() - killed
            holder.let_go()
            assert (1, "a") == first.outcome()

        assert ["a", "b"] == holder.runs
        assert waited < 5  # a poll, and a refused connection; lease_wait is 300 s
        messages = [str(w.message) for w in record if issubclass(w.category, JobstampsWarning)]
        assert 1 == len(messages), messages

    def test_store_of_ones_own_that_fails(self, fleet, log):
        """A store object without the guard whose lease calls raise: the job runs, as without a remote."""

        class Failing:
            def __init__(self, inner):
                self.inner = inner
                self.url = inner.url

            def __getattr__(self, name):
                return getattr(self.inner, name)

            def acquire_lease(self, key, owner, ttl):
                raise ConnectionError("no leases today")

            renew_lease = release_lease = lease_holder = acquire_lease

        fleet.remote = Failing(fleet.remote)
        f = fleet.machine("a", lambda x: x * 2)

        assert 4 == f(2)
        assert "failed (acquire_lease: ConnectionError('no leases today')); running without a lease" in log()


class TestSettings:
    @pytest.mark.parametrize("value", ["soon", "-1", "0", "nan", "inf"])
    def test_bad_ttl_is_ignored(self, fleet, monkeypatch, value):
        """A JOBSTAMPS_LEASE_TTL that is not a number of seconds above 0 is ignored, with a warning."""
        monkeypatch.setenv("JOBSTAMPS_LEASE_TTL", value)
        f = fleet.machine("a", lambda x: x)

        with pytest.warns(JobstampsWarning, match=f"ignoring JOBSTAMPS_LEASE_TTL='{value}'.*using 30") as record:
            assert 1 == f(1)

        assert __file__ == record[0].filename

    def test_bad_wait_is_ignored(self, fleet, monkeypatch):
        """A negative JOBSTAMPS_LEASE_WAIT is ignored, with a warning."""
        monkeypatch.setenv("JOBSTAMPS_LEASE_WAIT", "-5")
        f = fleet.machine("a", lambda x: x)

        with pytest.warns(JobstampsWarning, match="ignoring JOBSTAMPS_LEASE_WAIT='-5'.*using 300"):
            assert 1 == f(1)

    @pytest.mark.parametrize(
        ("value", "error"),
        [(-1, ValueError), (float("nan"), ValueError), ("5", TypeError), (True, TypeError)],
    )
    def test_bad_lease_wait(self, value, error):
        """lease_wait must be a number of seconds, 0 or more."""
        with pytest.raises(error, match="lease_wait must be"):
            jobstamped(lease_wait=value)(len)


SCRIPT = """\
import os, sys, time
from pathlib import Path
from jobstamps import HashMethod, jobstamped


@jobstamped(dependencies=["schema.txt"], method=HashMethod)
def generate(name):
    with open(os.environ["COUNTER"], "a") as counter:
        counter.write(f"{os.environ['MACHINE']} {time.monotonic()}\\n")
    if os.environ.get("HANG"):
        time.sleep(60)
    return name + ": " + Path("schema.txt").read_text().strip()


print(generate(sys.argv[1]))
if os.environ.get("SHOW_MODULES"):
    heavy = ("threading", "jobstamps.remote", "jobstamps._lease", "jobstamps._sharing", "redis")
    print(" ".join(m for m in heavy if m in sys.modules))
"""


class Machine:
    """
    A checkout of a small project, and a cache directory, on a machine of
    its own: its processes share only the remote store.
    """

    def __init__(self, base, name, url, counter):
        self.name = name
        self.checkout = base / name
        (self.checkout / ".git").mkdir(parents=True)
        (self.checkout / "job.py").write_text(SCRIPT)
        (self.checkout / "schema.txt").write_text("id: int\n")
        self.log = base / f"{name}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")},
            "JOBSTAMPS_CACHE_DIR": str(base / f"{name}-cache"),
            "JOBSTAMPS_STORE": url,
            "JOBSTAMPS_SECRET": SECRET,
            "JOBSTAMPS_DEBUG": "1",
            "COUNTER": str(counter),
            "MACHINE": name,
        }

    def start(self, *args, **env):
        """
        Run ``job.py`` *args* (or a command, if *args* start with jobstamp),
        its stderr to the machine's log.
        """
        if not args or args[0] != JOBSTAMP:
            args = (sys.executable, "job.py", *(args or ("model",)))
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                args,
                cwd=self.checkout,
                env={**self.env, **env},
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def logged(self):
        return self.log.read_text() if self.log.exists() else ""


JOBSTAMP = shutil.which("jobstamp", path=os.path.dirname(sys.executable))


def lines(counter):
    return counter.read_text().splitlines() if counter.exists() else []


@pytest.fixture(name="counter")
def _counter(tmp_path):
    return tmp_path / "runs"


def catches(pid, signum):
    """
    Whether process *pid* has a handler for *signum* (jobstamp installs its
    own for SIGTERM and SIGHUP once the command is started).
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def finish(process, timeout=30):
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


class TestProcesses:
    def test_killed_holder_is_taken_over(self, tmp_path, redis_server, counter):
        """A holder killed with SIGKILL mid-job: a waiter takes over within the lease TTL and a poll, with the right result."""
        a = Machine(tmp_path, "a", redis_server.url, counter)
        b = Machine(tmp_path, "b", redis_server.url, counter)
        ttl = {"JOBSTAMPS_LEASE_TTL": "1"}
        holder = a.start(HANG="1", **ttl)
        eventually(lambda: len(lines(counter)) == 1)
        waiter = b.start(**ttl)
        eventually(lambda: "waiting up to 300 s" in b.logged())

        holder.kill()
        killed = time.monotonic()
        finish(holder)
        code, out = finish(waiter)

        assert (0, "model: id: int\n") == (code, out)
        machines = [line.split() for line in lines(counter)]
        assert ["a", "b"] == [name for name, _ in machines]
        taken_over_after = float(machines[1][1]) - killed
        assert taken_over_after < 1 + MAX_POLL + 2.5, taken_over_after  # TTL, a poll, slack
        assert re.search(r"took the lease as .* after waiting .* let it expire", b.logged())

    @pytest.mark.parametrize(
        "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["TERM", "HUP", "INT"]
    )
    def test_command_ended_by_a_signal_releases(self, tmp_path, redis_server, counter, signum):
        """jobstamp ended by a signal while its command holds the lease releases the lease, saying it has no stamp."""
        a = Machine(tmp_path, "a", redis_server.url, counter)
        command = [JOBSTAMP, "--use-hashes", "--dependencies", "schema.txt", "--", "sh", "-c", f"echo a >> {counter}; exec sleep 30"]
        client = redis.Redis.from_url(redis_server.url)
        holder = a.start(*command)
        eventually(lambda: lines(counter) == ["a"] and catches(holder.pid, signum))
        held = lease_keys(client, "jobstamps:")

        holder.send_signal(signum)
        code, _ = finish(holder)
        leases = lease_keys(client, "jobstamps:")
        failures = lease_keys(client, "jobstamps:", failed=True)
        client.close()

        assert 1 == len(held)
        assert 128 + signum == code
        assert {} == leases
        assert list(held.values()) == list(failures.values())

    def test_command_whose_reader_went_away_releases(self, tmp_path, redis_server, counter):
        """jobstamp whose stdout reader is gone stores nothing and releases its lease, so another machine runs at once."""
        a = Machine(tmp_path, "a", redis_server.url, counter)
        b = Machine(tmp_path, "b", redis_server.url, counter)
        command = [JOBSTAMP, "--use-hashes", "--dependencies", "schema.txt", "--", "sh", "-c", f"seq 1 100000; echo ran >> {counter}"]
        holder = a.start(*command)
        holder.stdout.close()
        holder.wait(timeout=30)
        client = redis.Redis.from_url(redis_server.url)
        leases = lease_keys(client, "jobstamps:")
        client.close()

        code, out = finish(b.start(*command))

        assert 0 == holder.returncode  # sh's own status: seq got SIGPIPE
        assert {} == leases
        assert (0, 100000) == (code, len(out.splitlines()))
        assert ["ran", "ran"] == lines(counter)  # nothing was stored to replay

    @pytest.mark.parametrize("option", ["--no-lease", None])
    def test_command_no_lease(self, tmp_path, redis_server, counter, option):
        """jobstamp --no-lease runs at once while another machine runs the command; without it, it waits and replays."""
        go = tmp_path / "go"
        a = Machine(tmp_path, "a", redis_server.url, counter)
        b = Machine(tmp_path, "b", redis_server.url, counter)
        script = (
            f"echo $MACHINE >> {counter}; "
            f'if [ "$MACHINE" = a ]; then while [ ! -e {go} ]; do sleep 0.01; done; fi; '
            "echo made"
        )
        command = [JOBSTAMP, "--use-hashes", "--dependencies", "schema.txt", "--", "sh", "-c", script]
        holder = a.start(*command)
        eventually(lambda: lines(counter) == ["a"])

        if option is not None:
            second = finish(b.start(command[0], option, *command[1:]), timeout=20)
            go.touch()
        else:
            waiter = b.start(*command)
            eventually(lambda: "waiting up to 300 s" in b.logged())
            go.touch()
            second = finish(waiter)

        assert (0, "made\n") == finish(holder) == second
        assert (["a", "b"] if option else ["a"]) == lines(counter)

    def test_local_hit_needs_no_remote(self, tmp_path, redis_url, counter):
        """A local hit with a remote store configured imports neither the remote, the lease machinery nor threading."""
        a = Machine(tmp_path, "a", redis_url, counter)
        env = {"JOBSTAMPS_DEBUG": "", "SHOW_MODULES": "1", "JOBSTAMPS_STORE": redis_url + "?unused=1"}
        miss = finish(a.start(**env))
        hit = finish(a.start(**env))

        assert "threading jobstamps.remote jobstamps._lease jobstamps._sharing redis" in miss[1]
        assert (0, "model: id: int\n\n") == hit
