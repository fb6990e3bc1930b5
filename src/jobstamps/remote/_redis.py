"""
:class:`RedisStore`: remote entries as Redis strings, files appended in
chunks and renamed into place, and leases (``SET NX PX``, renewed and
released by compare-and-set in Lua scripts).

Private to :mod:`jobstamps.remote`; knows nothing of stamps. redis-py is
imported when a store is made.
"""

from __future__ import annotations

import contextlib
import os
import typing
import urllib.parse

from .. import _fs
from ..exceptions import RemoteStoreError
from ._common import (
    CHUNK,
    DEFAULT_TIMEOUT,
    RemoteStoreIOError,
    missing_driver,
    read_chunks,
    redact,
)

if typing.TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_PREFIX = "jobstamps:"
REDIS_SCHEMES = frozenset({"redis", "rediss"})
# Seconds a Redis upload in progress may last before its temporary key expires.
_UPLOAD_EXPIRE = 3600
# Leases live under <prefix>lease:<key>. Entry keys never hold a ":" (function
# folders are made of letters, digits and "._-"), so neither they nor the
# temporary keys of uploads (<prefix>tmp:...) can be a lease's.
LEASE_PREFIX = "lease:"
# Compare-and-set, atomic on the server: only the owner renews or releases.
_RENEW = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


class RedisStore:
    """
    Entries as Redis strings under *prefix* + key.

    Every command fails fast: connecting and each read are bounded by
    *connect_timeout* and *read_timeout* seconds, and nothing is retried.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        expire: int | None = None,
        connect_timeout: float = DEFAULT_TIMEOUT,
        read_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """
        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, or
                ``rediss://`` for TLS.
            prefix: Put before every key, to share a database with others.
            expire: Seconds after which Redis drops an entry (``SET EX``);
                None keeps entries until evicted.

        Raises:
            RemoteStoreError: redis-py is not installed, or *url* is invalid.
        """
        if urllib.parse.urlsplit(url).scheme not in REDIS_SCHEMES:
            raise RemoteStoreError(
                f"jobstamps: {redact(url)!r} is not a redis:// or rediss:// URL"
            )
        if expire is not None and (not isinstance(expire, int) or expire < 1):
            raise RemoteStoreError(
                f"jobstamps: expire must be a whole number of seconds >= 1, not {expire!r}"
            )
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise missing_driver("redis", "redis", url) from None
        self.url = redact(url)
        self.prefix = prefix
        self.expire = expire
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout,
                socket_timeout=read_timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
        except ValueError as e:
            raise RemoteStoreError(
                f"jobstamps: invalid Redis URL {self.url!r}: {e}"
            ) from None
        # EVALSHA, falling back to EVAL once per connection the first time.
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    def get(self, key: str) -> bytes | None:
        # Without decode_responses, redis-py answers bytes.
        return typing.cast("bytes | None", self._client.get(self.prefix + key))

    def put(self, key: str, data: bytes) -> None:
        self._client.set(self.prefix + key, data, ex=self.expire)

    def delete(self, key: str) -> None:
        self._client.delete(self.prefix + key)

    def exists(self, key: str) -> bool:
        return bool(self._client.exists(self.prefix + key))

    def put_file(self, key: str, path: str) -> None:
        # Appended chunk by chunk to a temporary key, then renamed: RENAME is
        # atomic, so readers never see a partial entry.
        temporary = f"{self.prefix}tmp:{os.urandom(8).hex()}:{key}"
        try:
            with open(path, "rb") as file:
                size = 0
                self._client.set(temporary, b"", ex=_UPLOAD_EXPIRE)
                for chunk in read_chunks(file):
                    size += len(chunk)
                    # APPEND answers the new length: a temporary key that
                    # expired during a slow upload starts again from empty.
                    if self._client.append(temporary, chunk) != size:
                        raise RemoteStoreIOError(
                            f"upload of {key} lost its temporary key"
                        )
            with self._client.pipeline(transaction=True) as pipe:
                # RENAME keeps the temporary key's expiry: replace it with
                # the store's, in the same transaction.
                pipe.rename(temporary, self.prefix + key)
                if self.expire is None:
                    pipe.persist(self.prefix + key)
                else:
                    pipe.expire(self.prefix + key, self.expire)
                pipe.execute()
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.delete(temporary)
            raise

    def get_file(self, key: str, path: str) -> bool:
        name = self.prefix + key
        with self._client.pipeline(transaction=True) as pipe:
            pipe.exists(name)
            pipe.strlen(name)
            found, size = pipe.execute()
        if not found:
            return False
        # Created as open() would: mode 0o666 less the umask.
        _fs.write_atomically(path, self._windows(key, size), 0o666)
        return True

    def _windows(self, key: str, size: int) -> Iterable[bytes]:
        # GETRANGE's end is inclusive. The last window asks for one byte
        # more than *size*: an entry that shrank or grew since STRLEN fails
        # instead of being written cut or mixed.
        name = self.prefix + key
        offset = 0
        while True:
            want = min(CHUNK, size - offset)
            last = offset + want >= size
            end = offset + want if last else offset + want - 1
            chunk = typing.cast("bytes", self._client.getrange(name, offset, end))
            if len(chunk) != want:
                raise RemoteStoreIOError(
                    f"{key} changed while it was read ({len(chunk)} bytes at "
                    f"offset {offset}, expected {want} of {size})"
                )
            yield chunk
            offset += want
            if last:
                return

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        name = self.prefix + LEASE_PREFIX + key
        return bool(self._client.set(name, owner, nx=True, px=_milliseconds(ttl)))

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        name = self.prefix + LEASE_PREFIX + key
        return bool(self._renew(keys=[name], args=[owner, _milliseconds(ttl)]))

    def release_lease(self, key: str, owner: str) -> None:
        self._release(keys=[self.prefix + LEASE_PREFIX + key], args=[owner])

    def lease_holder(self, key: str) -> str | None:
        holder = typing.cast(
            "bytes | None", self._client.get(self.prefix + LEASE_PREFIX + key)
        )
        return None if holder is None else holder.decode("utf-8", "replace")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"


def _milliseconds(seconds: float) -> int:
    # Redis refuses an expiry beyond 2**63 ms from now, and 0.
    return min(max(1, round(seconds * 1000)), 1 << 48)
