"""
Remote stores: backends, signing, and a remote that is down, dead or slow.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import warnings

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from jobstamps import _fs
from jobstamps.exceptions import JobstampsWarning, RemoteStoreError
from jobstamps.remote import _common, _fsspec, _redis, open_remote
from jobstamps.remote._fsspec import FsspecStore
from jobstamps.remote._guard import GuardedStore, RemoteTimeoutError
from jobstamps.remote._redis import RedisStore
from jobstamps.remote._sealed import SealedStore, seal, unseal

from .loopback import free_port

SECRET = b"a shared secret for these tests"
OTHER_SECRET = b"another secret, not the one used"
KEY = "tests.f-0123456789abcdef/" + "ab" * 32


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    """
    No secret in the environment; every store may warn again.
    """
    monkeypatch.delenv(_common.SECRET_ENV, raising=False)
    _common._warned.clear()
    yield
    _common._warned.clear()


@pytest.fixture(name="memory_url")
def _memory_url():
    """
    An fsspec memory:// location of the test's own.
    """
    import fsspec

    name = os.urandom(6).hex()
    yield f"memory://jobstamps-{name}/cache"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/jobstamps-{name}"):
        fs.rm(f"/jobstamps-{name}", recursive=True)


class CountingStore:
    """
    Passes calls to *inner*, counting them.
    """

    def __init__(self, inner):
        self.inner = inner
        self.url = inner.url
        self.calls = 0

    def get(self, key):
        self.calls += 1
        return self.inner.get(key)

    def put(self, key, data):
        self.calls += 1
        self.inner.put(key, data)

    def delete(self, key):
        self.calls += 1
        self.inner.delete(key)

    def exists(self, key):
        self.calls += 1
        return self.inner.exists(key)

    def put_file(self, key, path):
        self.calls += 1
        self.inner.put_file(key, path)

    def get_file(self, key, path):
        self.calls += 1
        return self.inner.get_file(key, path)

    def close(self):
        self.inner.close()


@contextlib.contextmanager
def listening(backlog):
    """
    A loopback TCP port that accepts connections and never answers.

    With a *backlog* of 0 and one connection left pending, further connects
    are never completed: a black-holed host, as far as a client can tell.
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(backlog)
        port = server.getsockname()[1]
        if backlog:
            yield port
            return
        with socket.create_connection(("127.0.0.1", port)):
            yield port


def closed_port():
    """
    A loopback port nothing listens on: connecting is refused at once.
    """
    return free_port()


def one_warning(record):
    """
    The message of the only JobstampsWarning in *record*.
    """
    messages = [
        str(w.message) for w in record if issubclass(w.category, JobstampsWarning)
    ]
    assert 1 == len(messages), messages
    return messages[0]


class TestSeal:
    @given(key=st.text(min_size=1), data=st.binary())
    def test_round_trip(self, key, data):
        """
        What is sealed for a key unseals to the same data with the same secret.
        """
        assert data == unseal(SECRET, key, seal(SECRET, key, data))

    @given(data=st.binary(max_size=64), cut=st.integers(min_value=1, max_value=200))
    def test_truncated(self, data, cut):
        """
        A sealed entry missing any of its tail is rejected.
        """
        blob = seal(SECRET, KEY, data)

        assert None is unseal(SECRET, KEY, blob[: max(0, len(blob) - cut)])

    def test_tampered_data(self):
        """
        One changed bit of data fails the signature.
        """
        blob = bytearray(seal(SECRET, KEY, b"the result"))
        blob[-1] ^= 1

        assert None is unseal(SECRET, KEY, bytes(blob))

    def test_tampered_tag(self):
        """
        One changed bit of the tag fails the signature.
        """
        blob = bytearray(seal(SECRET, KEY, b"the result"))
        blob[10] ^= 1

        assert None is unseal(SECRET, KEY, bytes(blob))

    def test_wrong_secret(self):
        """
        An entry signed with another secret is rejected.
        """
        assert None is unseal(SECRET, KEY, seal(OTHER_SECRET, KEY, b"x"))

    def test_swapped_keys(self):
        """
        An entry copied under another key is rejected: the key is signed too.
        """
        blob = seal(SECRET, "f/aa", b"result of aa")

        assert None is unseal(SECRET, "f/bb", blob)

    def test_key_data_boundary(self):
        """
        Moving bytes between the end of the key and the data changes the tag.
        """
        blob = seal(SECRET, "f/a", b"bc")

        assert None is unseal(SECRET, "f/ab", blob[:-2] + b"c")

    def test_garbage(self):
        """
        Bytes that are no envelope at all are rejected.
        """
        assert None is unseal(SECRET, KEY, b"")
        assert None is unseal(SECRET, KEY, b"JOBSTMP\x01" + bytes(64))
        assert None is unseal(None, KEY, b"\x80\x04pickle")

    def test_unsigned_rejected_with_secret(self):
        """
        With a secret, an unsigned entry is rejected, so none can be planted.
        """
        blob = seal(None, KEY, b"x")

        assert None is unseal(SECRET, KEY, blob)

    def test_unsigned_is_distinguishable(self):
        """
        Unsigned entries carry their own marker and no tag.
        """
        signed, unsigned = seal(SECRET, KEY, b"x"), seal(None, KEY, b"x")

        assert signed[:5] == unsigned[:5]
        assert signed[5:6] != unsigned[5:6]
        assert len(unsigned) + 32 == len(signed)

    def test_trusted_reads_both(self):
        """
        Without a secret (a trusted store) signed and unsigned entries read.
        """
        assert b"x" == unseal(None, KEY, seal(None, KEY, b"x"))
        assert b"y" == unseal(None, KEY, seal(SECRET, KEY, b"y"))


class TestRedisStore:
    def test_round_trip(self, redis_url, prefix):
        """
        What is put is got back, until it is deleted.
        """
        store = RedisStore(redis_url, prefix=prefix)
        try:
            assert None is store.get(KEY)
            store.put(KEY, b"\x00stamp")
            assert b"\x00stamp" == store.get(KEY)
            store.put(KEY, b"newer")
            assert b"newer" == store.get(KEY)
            store.delete(KEY)
            assert None is store.get(KEY)
            store.delete(KEY)
        finally:
            store.close()

    def test_prefix_and_expiry(self, redis_url, prefix):
        """
        Entries live under the prefix, with the expiry asked for.
        """
        store = RedisStore(redis_url, prefix=prefix, expire=600)
        client = redis.Redis.from_url(redis_url)
        try:
            store.put(KEY, b"data")

            assert b"data" == client.get(prefix + KEY)
            assert 0 < client.ttl(prefix + KEY) <= 600
            assert [(prefix + KEY).encode()] == client.keys(prefix + "*")
        finally:
            store.close()
            client.close()

    def test_no_expiry_by_default(self, redis_url, prefix):
        """
        Without *expire*, entries stay until Redis evicts them.
        """
        store = RedisStore(redis_url, prefix=prefix)
        client = redis.Redis.from_url(redis_url)
        try:
            store.put(KEY, b"data")

            assert -1 == client.ttl(prefix + KEY)
            assert "jobstamps:" == RedisStore(redis_url).prefix
        finally:
            store.close()
            client.close()

    def test_fails_fast(self):
        """
        Timeouts are as configured and nothing is retried.
        """
        store = RedisStore(
            "redis://127.0.0.1:1/3", connect_timeout=0.5, read_timeout=0.25
        )
        kwargs = store._client.connection_pool.connection_kwargs

        assert 0.5 == kwargs["socket_connect_timeout"]
        assert 0.25 == kwargs["socket_timeout"]
        assert 0 == kwargs["retry"].get_retries()
        assert 3 == kwargs["db"]

    def test_tls(self):
        """
        rediss:// connects over TLS.
        """
        store = RedisStore("rediss://cache.example:6380/0")

        assert redis.SSLConnection is store._client.connection_pool.connection_class

    def test_password_hidden(self):
        """
        The store's URL, used in messages, holds no password.
        """
        store = RedisStore("redis://user:hunter2@cache.example:6379/0")

        assert "redis://user:***@cache.example:6379/0" == store.url
        assert "hunter2" not in repr(store)

    def test_invalid(self):
        """
        A bad expiry or URL is refused when the store is made.
        """
        with pytest.raises(RemoteStoreError):
            RedisStore("redis://localhost", expire=0)
        with pytest.raises(RemoteStoreError):
            RedisStore("http://localhost")


class TestFsspecStore:
    def test_memory_round_trip(self, memory_url):
        """
        What is put is got back, until it is deleted.
        """
        store = FsspecStore(memory_url)

        assert None is store.get(KEY)
        store.put(KEY, b"\x00stamp")
        assert b"\x00stamp" == store.get(KEY)
        store.put(KEY, b"newer")
        assert b"newer" == store.get(KEY)
        store.delete(KEY)
        assert None is store.get(KEY)
        store.delete(KEY)

    def test_file_round_trip(self, tmp_path):
        """
        On a local filesystem entries are files at <root>/<key>, written
        through a temporary file that is not left behind.
        """
        store = FsspecStore((tmp_path / "cache").as_uri())
        data = os.urandom(3 * _common.CHUNK + 17)  # several chunks

        store.put(KEY, data)

        assert data == (tmp_path / "cache" / KEY).read_bytes()
        assert data == store.get(KEY)
        assert [KEY.rpartition("/")[2]] == os.listdir(
            tmp_path / "cache" / KEY.rpartition("/")[0]
        )
        store.delete(KEY)
        assert None is store.get(KEY)

    def test_failed_put_leaves_nothing(self, tmp_path, monkeypatch):
        """
        A put that fails midway leaves no temporary file and no entry.
        """
        store = FsspecStore((tmp_path / "cache").as_uri())

        def fail(*args):
            raise OSError("disk full")

        monkeypatch.setattr(store._fs, "mv", fail)
        with pytest.raises(OSError, match="disk full"):
            store.put(KEY, b"data")

        assert [] == os.listdir(tmp_path / "cache" / KEY.rpartition("/")[0])

    @pytest.mark.parametrize(
        "key", ["../escape", "f/../../x", "/abs", "f//x", "f/./x", ""]
    )
    def test_keys_stay_inside(self, memory_url, key):
        """
        A key that could reach outside the store is refused.
        """
        store = FsspecStore(memory_url)

        with pytest.raises(ValueError, match="invalid remote key"):
            store.put(key, b"x")


class TestOpenRemote:
    def test_secret_required(self):
        """
        Without a secret, a remote store is refused with a clear error.
        """
        with pytest.raises(RemoteStoreError) as e:
            open_remote("memory://x")

        message = str(e.value)
        assert "JOBSTAMPS_SECRET" in message
        assert "secret=" in message
        assert "trust_store=True" in message
        assert "dangerous" in message
        assert "\n" not in message

    def test_secret_from_environment(self, memory_url, monkeypatch):
        """
        $JOBSTAMPS_SECRET is the default secret.
        """
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET.decode())
        store = open_remote(memory_url)
        store.put(KEY, b"data")

        assert b"data" == open_remote(memory_url, secret=SECRET).get(KEY)
        assert store.signed

    def test_short_secret(self):
        """
        A secret too short to resist guessing is refused.
        """
        with pytest.raises(RemoteStoreError, match="at least 16"):
            open_remote("memory://x", secret="short")

    def test_trust_store(self, memory_url):
        """
        trust_store=True without a secret writes unsigned entries, which a
        store with a secret refuses.
        """
        trusted = open_remote(memory_url, trust_store=True)
        trusted.put(KEY, b"data")
        signed = open_remote(memory_url, secret=SECRET)

        assert b"data" == trusted.get(KEY)
        assert not trusted.signed
        with pytest.warns(JobstampsWarning, match="signature"):
            assert None is signed.get(KEY)

    def test_unknown_scheme(self):
        """
        A scheme that is neither Redis nor fsspec is refused, as is a path.
        """
        with pytest.raises(RemoteStoreError, match="unknown remote store scheme"):
            open_remote("nosuch://host/x", secret=SECRET)
        with pytest.raises(RemoteStoreError, match="unknown remote store scheme"):
            open_remote("/var/cache/jobstamps", secret=SECRET)

    def test_missing_redis(self, monkeypatch):
        """
        Without redis-py, the error says which extra to install.
        """
        monkeypatch.setitem(__import__("sys").modules, "redis", None)

        with pytest.raises(RemoteStoreError, match=r"pip install 'jobstamps\[redis\]'"):
            open_remote("redis://localhost", secret=SECRET)

    @pytest.mark.parametrize(
        ("url", "driver", "extra"),
        [("s3://bucket/prefix", "s3fs", "s3"), ("gs://bucket/prefix", "gcsfs", "gcs")],
    )
    def test_missing_fsspec_driver(self, monkeypatch, url, driver, extra):
        """
        Without the filesystem's driver, the error says which extra to
        install.
        """
        monkeypatch.setitem(__import__("sys").modules, driver, None)

        with pytest.raises(
            RemoteStoreError, match=rf"pip install 'jobstamps\[{extra}\]'"
        ):
            open_remote(url, secret=SECRET)

    def test_layers(self, redis_url, prefix):
        """
        Redis URLs get a Redis backend, signed and guarded; options reach it.
        """
        store = open_remote(
            redis_url, secret=SECRET, prefix=prefix, expire=60, read_timeout=0.5
        )
        try:
            store.put(KEY, b"data")

            assert isinstance(store, SealedStore)
            assert isinstance(store.inner, GuardedStore)
            assert isinstance(store.inner.inner, RedisStore)
            assert b"data" == store.get(KEY)
            assert seal(SECRET, KEY, b"data") == store.inner.inner.get(KEY)
        finally:
            store.close()

    def test_tampered_entry(self, memory_url):
        """
        An entry changed in the store is a miss, with one warning per store.
        """
        store = open_remote(memory_url, secret=SECRET)
        store.put(KEY, b"data")
        backend = store.inner.inner
        backend.put(KEY, backend.get(KEY)[:-1] + b"!")
        backend.put("f/other", b"not even an envelope")

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert None is store.get(KEY)
            assert None is store.get("f/other")

        assert "signature does not match" in one_warning(record)

    def test_wrong_secret(self, redis_url, prefix):
        """
        Machines with another secret can't use each other's entries.
        """
        ours = open_remote(redis_url, secret=SECRET, prefix=prefix)
        theirs = open_remote(redis_url, secret=OTHER_SECRET, prefix=prefix)
        try:
            theirs.put(KEY, b"data")

            with pytest.warns(JobstampsWarning, match="signature does not match"):
                assert None is ours.get(KEY)
        finally:
            ours.close()
            theirs.close()


class TestGuardedStore:
    def test_down_at_start(self):
        """
        A remote that refuses connections is a miss and one warning, and is
        not called again.
        """
        counting = CountingStore(RedisStore(f"redis://127.0.0.1:{closed_port()}/0"))
        store = GuardedStore(counting)

        started = time.monotonic()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert None is store.get(KEY)
            store.put(KEY, b"data")
            store.delete(KEY)
            assert None is store.get(KEY)
        elapsed = time.monotonic() - started
        store.close()

        assert "ConnectionError" in one_warning(record)
        assert "for the rest of this process" in one_warning(record)
        assert 1 == counting.calls
        assert not store.available
        assert elapsed < 1.0

    def test_black_holed(self):
        """
        A host that never completes the connection costs the connect timeout,
        once.
        """
        with listening(backlog=0) as port:
            counting = CountingStore(
                RedisStore(f"redis://127.0.0.1:{port}/0", connect_timeout=0.3)
            )
            store = open_remote("redis://x", trust_store=True)
            store.inner.inner = counting  # same layers, this backend

            started = time.monotonic()
            with pytest.warns(JobstampsWarning, match="Timeout"):
                assert None is store.get(KEY)
                store.put(KEY, b"data")
            elapsed = time.monotonic() - started
            store.close()

        assert 1 == counting.calls
        assert 0.25 < elapsed < 1.5

    def test_slow(self):
        """
        A server that accepts but never answers costs the read timeout, once.
        """
        with listening(backlog=8) as port:
            counting = CountingStore(
                RedisStore(f"redis://127.0.0.1:{port}/0", read_timeout=0.3)
            )
            store = GuardedStore(counting)

            started = time.monotonic()
            with pytest.warns(JobstampsWarning, match="Timeout"):
                assert None is store.get(KEY)
                assert None is store.get(KEY)
            elapsed = time.monotonic() - started
            store.close()

        assert 1 == counting.calls
        assert 0.25 < elapsed < 1.5

    def test_killed_mid_run(self, redis_server):
        """
        A server that dies between calls costs a miss and a warning, never an
        exception, and is left alone afterwards.
        """
        counting = CountingStore(RedisStore(redis_server.url, read_timeout=0.5))
        store = SealedStore(GuardedStore(counting), SECRET)
        store.put(KEY, b"data")
        assert b"data" == store.get(KEY)

        redis_server.stop()
        with pytest.warns(JobstampsWarning, match="failed") as record:
            assert None is store.get(KEY)
            store.put(KEY, b"data")
            assert None is store.get(KEY)
        store.close()

        assert 1 == len(record)
        assert 3 == counting.calls

    def test_deadline(self):
        """
        A call that hangs inside the backend is abandoned at the deadline.
        """
        release = threading.Event()

        class Hanging(CountingStore):
            def get(self, key):
                self.calls += 1
                release.wait(10)

        counting = Hanging(RedisStore("redis://127.0.0.1:1/0"))
        store = GuardedStore(counting, deadline=0.2)
        try:
            started = time.monotonic()
            with pytest.warns(
                JobstampsWarning, match="RemoteTimeoutError: no answer within 0.2 s"
            ):
                assert None is store.get(KEY)
            elapsed = time.monotonic() - started
            assert None is store.get(KEY)
        finally:
            release.set()

        assert 1 == counting.calls
        assert 0.15 < elapsed < 1.0

    def test_cooldown(self, memory_url):
        """
        After the cooldown the remote is tried again; once it answers it is
        used as before, without a second warning.
        """
        counting = CountingStore(FsspecStore(memory_url))
        store = GuardedStore(counting, cooldown=0.2)
        counting.inner.put(KEY, b"data")
        broken = [True]
        real_get = counting.get

        def get(key):
            if broken[0]:
                counting.calls += 1
                raise ConnectionError("down")
            return real_get(key)

        counting.get = get
        with pytest.warns(JobstampsWarning, match="for 0.2 s"):
            assert None is store.get(KEY)
        assert None is store.get(KEY)
        assert 1 == counting.calls

        time.sleep(0.25)
        assert store.available
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert None is store.get(KEY)  # still down: no new warning
            time.sleep(0.25)
            broken[0] = False
            assert b"data" == store.get(KEY)
            assert b"data" == store.get(KEY)

        assert 4 == counting.calls
        assert store.available

    def test_one_warning_per_store(self):
        """
        Two guards of the same remote warn once between them.
        """
        url = f"redis://127.0.0.1:{closed_port()}/0"
        first, second = GuardedStore(RedisStore(url)), GuardedStore(RedisStore(url))

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            first.get(KEY)
            second.get(KEY)
        first.close()
        second.close()

        one_warning(record)

    def test_close_errors_swallowed(self):
        """
        A store that fails to close does not fail the process.
        """

        class Failing(CountingStore):
            def close(self):
                raise OSError("gone")

        GuardedStore(Failing(RedisStore("redis://127.0.0.1:1/0"))).close()

    def test_timeout_error_is_timeout(self):
        """
        The deadline's error is a TimeoutError, as callers expect.
        """
        assert issubclass(RemoteTimeoutError, TimeoutError)


class TestS3:
    def test_fails_fast(self):
        """
        An S3 endpoint that accepts and never answers costs about the read
        timeout times two attempts, then nothing.
        """
        pytest.importorskip("s3fs")
        with listening(backlog=8) as port:
            store = open_remote(
                "s3://bucket/prefix",
                secret=SECRET,
                endpoint_url=f"http://127.0.0.1:{port}",
                anon=True,
                connect_timeout=0.2,
                read_timeout=0.2,
            )
            fs = store.inner.inner.filesystem

            started = time.monotonic()
            with pytest.warns(JobstampsWarning, match="Timeout"):
                assert None is store.get(KEY)
                assert None is store.get(KEY)
            elapsed = time.monotonic() - started

        assert 2 == fs.retries
        assert 0.2 == fs.config_kwargs["read_timeout"]
        assert 0.2 == fs.config_kwargs["connect_timeout"]
        # Two attempts of 0.2 s, then the breaker: s3fs's own five retries
        # with backoff would take about 7 s. The bound is loose so that a
        # loaded machine does not fail it.
        assert elapsed < 4.0

    def test_options_win(self):
        """
        The user's retries and botocore settings are kept.
        """
        pytest.importorskip("s3fs")
        store = open_remote(
            "s3://bucket/prefix",
            secret=SECRET,
            anon=True,
            retries=4,
            config_kwargs={"read_timeout": 30},
        )
        fs = store.inner.inner.filesystem

        assert 4 == fs.retries
        assert 30 == fs.config_kwargs["read_timeout"]
        assert 1.0 == fs.config_kwargs["connect_timeout"]


def test_close_after_failure_does_not_wait():
    """
    Closing a store whose remote failed does not call into it again.
    """

    class Closing(CountingStore):
        def close(self):
            self.calls += 1

    counting = Closing(RedisStore(f"redis://127.0.0.1:{closed_port()}/0"))
    store = GuardedStore(counting)
    with pytest.warns(JobstampsWarning):
        store.get(KEY)
    store.close()

    assert 1 == counting.calls


BLOB = "blobs/" + "cd" * 32
# Several chunks, and a partial one at the end.
FILE_SIZE = 5 * _common.CHUNK + 123


@pytest.fixture(name="file_store", params=["redis", "memory", "file"])
def _file_store(request, tmp_path):
    """
    A backend of each kind, with a function listing what it holds.
    """
    if request.param == "redis":
        url, prefix = (
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("prefix"),
        )
        store = RedisStore(url, prefix=prefix)
        client = redis.Redis.from_url(url)

        def stored():
            return sorted(k.decode() for k in client.keys(prefix + "*"))

        yield store, stored
        store.close()
        client.close()
        return
    if request.param == "memory":
        url = request.getfixturevalue("memory_url")
    else:
        url = (tmp_path / "cache").as_uri()
    store = FsspecStore(url)

    def stored():
        root = store.path(BLOB).rpartition("/")[0].rpartition("/")[0]
        return (
            sorted(store.filesystem.find(root)) if store.filesystem.exists(root) else []
        )

    yield store, stored


@pytest.fixture(name="local")
def _local(tmp_path):
    """
    A directory for the local side of transfers, empty.
    """
    local = tmp_path / "local"
    local.mkdir()
    return local


def random_file(path, size):
    """
    Write *size* random bytes to *path*, a chunk at a time; return *path*.
    """
    with open(path, "wb") as file:
        for start in range(0, size, _common.CHUNK):
            file.write(os.urandom(min(_common.CHUNK, size - start)))
    return path


def fail_on_second_call(monkeypatch, target, name, error=ConnectionError):
    """
    Make *target*.*name* work once, then raise *error*.
    """
    real = getattr(target, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) >= 2:
            raise error("lost in the middle")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return calls


class TestFiles:
    def test_round_trip(self, file_store, local, tmp_path):
        """
        A file of several chunks comes back whole, replacing the destination,
        with no temporary file left on either side.
        """
        store, stored = file_store
        source = random_file(tmp_path / "source", FILE_SIZE)
        (local / "out").write_bytes(b"an older version")

        assert not store.exists(BLOB)
        store.put_file(BLOB, str(source))
        assert store.exists(BLOB)
        assert store.get_file(BLOB, str(local / "out"))

        assert source.read_bytes() == (local / "out").read_bytes()
        assert ["out"] == os.listdir(local)
        assert 1 == len(stored())

    def test_empty_and_replaced(self, file_store, local, tmp_path):
        """
        An empty file is an entry, not a miss; a second upload replaces it.
        """
        store, _ = file_store
        (tmp_path / "empty").write_bytes(b"")
        (tmp_path / "small").write_bytes(b"small")

        store.put_file(BLOB, str(tmp_path / "empty"))
        assert store.get_file(BLOB, str(local / "out"))
        assert b"" == (local / "out").read_bytes()
        store.put_file(BLOB, str(tmp_path / "small"))
        assert store.get_file(BLOB, str(local / "out"))
        assert b"small" == (local / "out").read_bytes()

    def test_missing(self, file_store, local):
        """
        Downloading a key that holds nothing answers False and creates
        nothing.
        """
        store, _ = file_store

        assert not store.get_file(BLOB, str(local / "out"))
        assert [] == os.listdir(local)

    def test_failed_upload_leaves_nothing(self, file_store, tmp_path, monkeypatch):
        """
        An upload that fails after its first chunk leaves no entry and no
        temporary object.
        """
        store, stored = file_store
        source = random_file(tmp_path / "source", 3 * _common.CHUNK)

        def chunks(file):
            yield file.read(_common.CHUNK)
            raise OSError("read error")

        monkeypatch.setattr(_fsspec, "read_chunks", chunks)
        monkeypatch.setattr(_redis, "read_chunks", chunks)
        with pytest.raises(OSError, match="read error"):
            store.put_file(BLOB, str(source))

        assert [] == stored()
        assert not store.exists(BLOB)

    def test_failed_direct_upload_discarded(self, memory_url, tmp_path, monkeypatch):
        """
        On an object store (written directly, no rename), a failed upload is
        discarded, not closed: closing would publish the part written.
        """
        store = FsspecStore(memory_url)
        store._rename = False
        events = []

        class Upload:
            closed = False

            def write(self, chunk):
                events.append("write")

            def discard(self):
                events.append("discard")

            def close(self):
                events.append("close")

        monkeypatch.setattr(store.filesystem, "open", lambda *args, **kwargs: Upload())
        monkeypatch.setattr(_fsspec, "read_chunks", lambda file: [b"a", b"b"])
        store.put_file(BLOB, str(random_file(tmp_path / "source", 2)))
        assert ["write", "write", "close"] == events
        events.clear()

        def chunks(file):
            yield b"a"
            raise OSError("read error")

        monkeypatch.setattr(_fsspec, "read_chunks", chunks)
        with pytest.raises(OSError, match="read error"):
            store.put_file(BLOB, str(tmp_path / "source"))

        assert ["write", "discard"] == events

    def test_failed_download_leaves_nothing(
        self, file_store, local, tmp_path, monkeypatch
    ):
        """
        A download that fails after its first chunk leaves the destination
        as it was, and no temporary file.
        """
        store, _ = file_store
        store.put_file(BLOB, str(random_file(tmp_path / "source", FILE_SIZE)))
        (local / "out").write_bytes(b"as it was")
        if isinstance(store, RedisStore):
            calls = fail_on_second_call(monkeypatch, store._client, "getrange")
        else:
            real_open = store.filesystem.open
            calls = []

            def open_failing(*args, **kwargs):
                file = real_open(*args, **kwargs)
                calls.extend(fail_on_second_call(monkeypatch, file, "read", OSError))
                return file

            monkeypatch.setattr(store.filesystem, "open", open_failing)

        with pytest.raises(OSError, match="lost in the middle"):
            store.get_file(BLOB, str(local / "out"))

        assert b"as it was" == (local / "out").read_bytes()
        assert ["out"] == os.listdir(local)

    def test_killed_mid_download(self, redis_server, local, tmp_path, monkeypatch):
        """
        A Redis server that dies during a download leaves no file behind,
        and through a guard is a miss and a warning.
        """
        store = RedisStore(redis_server.url, read_timeout=0.5)
        store.put_file(BLOB, str(random_file(tmp_path / "source", FILE_SIZE)))
        real_getrange = store._client.getrange

        def getrange(*args):
            chunk = real_getrange(*args)
            redis_server.stop()
            return chunk

        monkeypatch.setattr(store._client, "getrange", getrange)
        with pytest.warns(JobstampsWarning, match="get_file"):
            assert not GuardedStore(store).get_file(BLOB, str(local / "out"))
        store.close()

        assert [] == os.listdir(local)

    @pytest.mark.parametrize("change", [b"shorter", b"x" * (FILE_SIZE + 1)])
    def test_changed_mid_download(
        self, redis_url, prefix, local, tmp_path, monkeypatch, change
    ):
        """
        A Redis entry that shrinks or grows during a download fails it.
        """
        store = RedisStore(redis_url, prefix=prefix)
        store.put_file(BLOB, str(random_file(tmp_path / "source", FILE_SIZE)))
        real_getrange = store._client.getrange

        def getrange(*args):
            chunk = real_getrange(*args)
            store.put(BLOB, change)
            return chunk

        monkeypatch.setattr(store._client, "getrange", getrange)
        try:
            with pytest.raises(_common.RemoteStoreIOError, match="changed while"):
                store.get_file(BLOB, str(local / "out"))
        finally:
            store.close()

        assert [] == os.listdir(local)

    def test_redis_expiry(self, redis_url, prefix, tmp_path):
        """
        A file uploaded to Redis gets the store's expiry, or none, and leaves
        no temporary key.
        """
        client = redis.Redis.from_url(redis_url)
        source = str(random_file(tmp_path / "source", 10))
        expiring = RedisStore(redis_url, prefix=prefix, expire=600)
        lasting = RedisStore(redis_url, prefix=prefix)
        try:
            expiring.put_file(BLOB, source)
            assert 0 < client.ttl(prefix + BLOB) <= 600
            lasting.put_file(BLOB, source)
            assert -1 == client.ttl(prefix + BLOB)
            assert [(prefix + BLOB).encode()] == client.keys(prefix + "*")
        finally:
            for each in (client, expiring, lasting):
                each.close()

    @pytest.mark.parametrize("backend", ["redis", "file"])
    def test_memory_bounded(self, backend, request, local, tmp_path):
        """
        Uploading and downloading 64 MiB allocates a few chunks at most.

        (memory:// holds its files in memory by design, so it is left out.)
        """
        import tracemalloc

        size = 64 << 20
        source = random_file(tmp_path / "source", size)
        if backend == "redis":
            store = RedisStore(
                request.getfixturevalue("redis_url"),
                prefix=request.getfixturevalue("prefix"),
                read_timeout=10,
            )
        else:
            store = FsspecStore((tmp_path / "cache").as_uri())
        tracemalloc.start()
        try:
            store.put_file(BLOB, str(source))
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert store.get_file(BLOB, str(local / "out"))
            _, download_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            store.delete(BLOB)
            store.close()

        assert size == os.path.getsize(local / "out")
        assert upload_peak < 8 << 20, upload_peak
        assert download_peak < 8 << 20, download_peak

    def test_guarded_down(self, local, tmp_path):
        """
        Against a remote that is down, exists and get_file answer False and
        put_file does nothing, with one warning and no file created.
        """
        counting = CountingStore(RedisStore(f"redis://127.0.0.1:{closed_port()}/0"))
        store = SealedStore(GuardedStore(counting), SECRET)
        source = str(random_file(tmp_path / "source", 10))

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert not store.exists(BLOB)
            store.put_file(BLOB, source)
            assert not store.get_file(BLOB, str(local / "out"))
        store.close()

        assert "ConnectionError" in one_warning(record)
        assert "exists" in one_warning(record)
        assert 1 == counting.calls
        assert [] == os.listdir(local)

    def test_guarded_destination_taken(self, memory_url, local, tmp_path):
        """
        A download that can't take the destination's place (a directory is
        there) is a miss and a warning, pointing at the caller, not an error.
        """
        store = open_remote(memory_url, secret=SECRET)
        store.put_file(BLOB, str(random_file(tmp_path / "source", 10)))
        (local / "out").mkdir()
        (local / "out" / "inside").write_bytes(b"")

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert not store.get_file(BLOB, str(local / "out"))
            assert not store.exists(BLOB)  # the breaker is open

        assert "get_file" in one_warning(record)
        assert [__file__] == [w.filename for w in record]
        assert ["out"] == os.listdir(local)

    def test_guarded_warning_points_at_caller(self):
        """
        Warnings from a failed transfer point at the code calling the store.
        """
        store = SealedStore(
            GuardedStore(RedisStore(f"redis://127.0.0.1:{closed_port()}/0")), None
        )

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert not store.exists(BLOB)

        assert [__file__] == [w.filename for w in record]

    def test_guarded_deadline(self, local):
        """
        A download abandoned at the deadline is a miss, and when it ends
        later it neither replaces the destination nor leaves a file.
        """
        release, finished = threading.Event(), threading.Event()

        class Slow(CountingStore):
            def get_file(self, key, path):
                self.calls += 1
                release.wait(10)
                try:
                    _fs.write_atomically(path, [b"late"], 0o666)
                    return True
                finally:
                    finished.set()

        store = GuardedStore(Slow(RedisStore("redis://127.0.0.1:1/0")), deadline=0.2)
        with pytest.warns(JobstampsWarning, match="RemoteTimeoutError"):
            assert not store.get_file(BLOB, str(local / "out"))
        release.set()
        assert finished.wait(5)
        deadline = time.monotonic() + 5
        while os.listdir(local) and time.monotonic() < deadline:
            time.sleep(0.01)

        assert [] == os.listdir(local)

    def test_files_not_sealed(self, memory_url, local, tmp_path):
        """
        Through a signed store, files are stored as they are and read back
        unchecked: their key is their digest, which the caller verifies.
        """
        store = open_remote(memory_url, secret=SECRET)
        source = random_file(tmp_path / "source", 100)

        store.put_file(BLOB, str(source))

        assert source.read_bytes() == store.inner.inner.get(BLOB)
        assert store.exists(BLOB)
        assert store.get_file(BLOB, str(local / "out"))
        assert source.read_bytes() == (local / "out").read_bytes()
