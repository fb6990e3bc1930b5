"""
Leases: one run per stamp across machines, through a remote store that can
hold them, bounded by a time-to-live and a wait, never in the way.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
import redis

from jobstamps.exceptions import JobstampsWarning
from jobstamps.remote import _common, open_remote
from jobstamps.remote._common import has_leases
from jobstamps.remote._guard import GuardedLeasingStore, GuardedStore, guarded
from jobstamps.remote._redis import LEASE_PREFIX, RedisStore
from jobstamps.remote._sealed import SealedLeasingStore, SealedStore

from .redis_server import free_port

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


@pytest.fixture(name="prefix")
def _prefix():
    """
    A Redis key prefix of the test's own, on the shared server.
    """
    return f"jobstamps-test-{os.urandom(6).hex()}:"


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
