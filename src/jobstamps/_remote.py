"""
Remote stores: a second tier of stamps shared between machines.

The local stamp directory stays the first tier. A remote store is read on a
local miss and written after a run, so that a result computed on one machine
is a hit on every other (a CI fleet whose machines all start cold).

A remote store only moves opaque bytes under string keys (``"<function
folder>/<hex digest>"``). Three layers wrap a backend, outermost first::

    SealedStore     signs every entry with HMAC-SHA256 and checks it on read
    GuardedStore    turns failures and timeouts into misses, warns once, and
                    stops calling a remote that failed
    RedisStore | FsspecStore

:func:`open_remote` builds that stack from a URL. This module is imported only
when a remote is configured: it keeps redis, fsspec and threading off the path
of a local hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
import time
import typing
import urllib.parse
import warnings

from . import _log
from .exceptions import JobstampsWarning, RemoteStoreError

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SECRET_ENV = "JOBSTAMPS_SECRET"
DEFAULT_PREFIX = "jobstamps:"
DEFAULT_TIMEOUT = 1.0
DEFAULT_DEADLINE = 10.0
MIN_SECRET_BYTES = 16

# Envelope of a remote entry:
#   MAGIC (4) | version (1) | kind (1) | HMAC-SHA256 tag (32, signed only) | data
# The tag covers the header, the key (length-prefixed) and the data, so an
# entry copied under another key, or relabelled as unsigned, fails the check.
MAGIC = b"JSRE"
ENVELOPE_VERSION = 1
SIGNED = b"S"
UNSIGNED = b"U"
_SIGNED_HEADER = MAGIC + bytes([ENVELOPE_VERSION]) + SIGNED
_UNSIGNED_HEADER = MAGIC + bytes([ENVELOPE_VERSION]) + UNSIGNED
_HEADER_SIZE = len(_SIGNED_HEADER)
_TAG_SIZE = hashlib.sha256().digest_size

_REDIS_SCHEMES = frozenset({"redis", "rediss"})
# Filesystems where renaming a file is atomic: a put writes a temporary object
# and moves it in place. Object stores publish an upload only once it is
# complete, and have no cheap rename, so they are written directly.
_RENAMING_PROTOCOLS = frozenset({"file", "local", "sftp", "ssh"})
_CHUNK = 1 << 20
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
_S3_ATTEMPTS = 2

# (kind, url) of every store that has already warned in this process.
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()
# Frames between the user's call of a cached function and the core's call of
# a remote store method (the wrapper's __call__, Job.call, the core's remote
# helper): warnings point at the user's code, as the core's own do.
CALLER_FRAMES = 3


class RemoteStore(typing.Protocol):
    """
    Where stamps are shared between machines: bytes under string keys.

    Keys look like ``"<function folder>/<hex digest>"``. Implementations don't
    inherit from this class; they only need its methods and *url*.
    """

    @property
    def url(self) -> str:
        """
        Where the store is, for messages: never holds a password.
        """

    def get(self, key: str) -> bytes | None:
        """
        The bytes stored under *key*, or None if there are none.
        """

    def put(self, key: str, data: bytes) -> None:
        """
        Store *data* under *key*, replacing what was there.
        """

    def delete(self, key: str) -> None:
        """
        Remove what is stored under *key*, if anything.
        """

    def close(self) -> None:
        """
        Release connections; the store is not used afterwards.
        """


def seal(secret: bytes | None, key: str, data: bytes | memoryview) -> bytes:
    """
    *data* in an envelope signed for *key* with *secret*.

    With no *secret* (only for a store the user trusts), the envelope says it
    is unsigned, so that a reader with a secret rejects it.
    """
    if secret is None:
        return b"".join((_UNSIGNED_HEADER, data))
    return b"".join((_SIGNED_HEADER, _tag(secret, key, data), data))


def unseal(secret: bytes | None, key: str, blob: bytes | memoryview) -> bytes | None:
    """
    The data *blob* holds for *key*, or None unless its signature is intact.

    Returns None for anything but an envelope of this version: truncated,
    garbage, signed with another secret or for another key, and, when a
    *secret* is given, unsigned. With no *secret* (a trusted store) signed
    and unsigned entries are both accepted unchecked.
    """
    view = memoryview(blob)
    header = bytes(view[:_HEADER_SIZE])
    if header == _UNSIGNED_HEADER:
        return None if secret is not None else bytes(view[_HEADER_SIZE:])
    if header != _SIGNED_HEADER or len(view) < _HEADER_SIZE + _TAG_SIZE:
        return None
    data = view[_HEADER_SIZE + _TAG_SIZE :]
    if secret is not None:
        tag = view[_HEADER_SIZE : _HEADER_SIZE + _TAG_SIZE]
        if not hmac.compare_digest(tag, _tag(secret, key, data)):
            return None
    return bytes(data)


def _tag(secret: bytes, key: str, data: bytes | memoryview) -> bytes:
    mac = hmac.new(secret, _SIGNED_HEADER, hashlib.sha256)
    encoded = key.encode("utf-8", "surrogatepass")
    mac.update(len(encoded).to_bytes(4, "big"))
    mac.update(encoded)
    mac.update(data)
    return mac.digest()


def redact(url: str) -> str:
    """
    *url* without the password it may hold, for messages.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def _warn_once(kind: str, url: str, message: str, depth: int) -> None:
    # *depth*: frames from the caller up to the outermost store method.
    _log.debug("%s", message)
    with _warned_lock:
        if (kind, url) in _warned:
            return
        _warned.add((kind, url))
    warnings.warn(message, JobstampsWarning, stacklevel=depth + CALLER_FRAMES + 2)


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
        if urllib.parse.urlsplit(url).scheme not in _REDIS_SCHEMES:
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
            raise _missing_driver("redis", "redis", url) from None
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

    def get(self, key: str) -> bytes | None:
        # Without decode_responses, redis-py answers bytes.
        return typing.cast("bytes | None", self._client.get(self.prefix + key))

    def put(self, key: str, data: bytes) -> None:
        self._client.set(self.prefix + key, data, ex=self.expire)

    def delete(self, key: str) -> None:
        self._client.delete(self.prefix + key)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"


class FsspecStore:
    """
    Entries as objects at ``<url>/<key>`` on any fsspec filesystem:
    ``file://``, ``memory://``, ``s3://bucket/prefix``, ``gs://...``.
    """

    def __init__(self, url: str, **storage_options: typing.Any) -> None:
        """
        Args:
            url: Where the entries go; its path is the prefix of every key.
            storage_options: Passed to the filesystem (credentials, endpoint,
                ``config_kwargs`` for s3fs...).

        Raises:
            RemoteStoreError: fsspec, or the driver for *url*, is not
                installed.
        """
        try:
            import fsspec.core
        except ImportError:
            raise _missing_driver("fsspec", "fsspec", url) from None
        scheme = urllib.parse.urlsplit(url).scheme
        try:
            self._fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as e:
            raise _missing_driver(
                scheme, _EXTRAS.get(scheme, "fsspec"), url, e
            ) from None
        except ValueError as e:
            raise RemoteStoreError(
                f"jobstamps: can't open remote store {redact(url)!r}: {e}"
            ) from None
        self.url = redact(url)
        self._root = str(root).rstrip("/")
        protocols = self._fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        self._rename = not _RENAMING_PROTOCOLS.isdisjoint(protocols)

    @property
    def filesystem(self) -> typing.Any:
        """
        The fsspec filesystem the entries are on.
        """
        return self._fs

    def path(self, key: str) -> str:
        """
        Where the entry of *key* is on the filesystem.

        Raises:
            ValueError: *key* has an empty, ``.`` or ``..`` segment, which
                could reach outside the store.
        """
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"jobstamps: invalid remote key {key!r}")
        return f"{self._root}/{key}"

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self._fs.cat_file(self.path(key)))
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        if not self._rename:
            self._write(path, data)
            return
        self._fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        temporary = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        try:
            self._write(temporary, data)
            self._fs.mv(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm_file(temporary)
            raise

    def _write(self, path: str, data: bytes) -> None:
        # In chunks, so that object stores can upload in parts as they go.
        view = memoryview(data)
        with self._fs.open(path, "wb") as file:
            for start in range(0, len(view), _CHUNK):
                file.write(view[start : start + _CHUNK])

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(self.path(key))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"


class RemoteTimeoutError(TimeoutError):
    """
    A remote store did not answer within its deadline.
    """


_T = typing.TypeVar("_T")


class GuardedStore:
    """
    A remote store that never fails the job: a circuit breaker around *inner*.

    Any exception from *inner*, or a call that takes longer than *deadline*
    seconds, makes that call a miss (``get``) or a no-op (``put``,
    ``delete``), warns once per process for this store, and opens the
    breaker: *inner* is not called again for *cooldown* seconds (None: for
    the rest of the process). A remote that is down so costs at most one
    timeout per process, or per *cooldown*.
    """

    def __init__(
        self,
        inner: RemoteStore,
        *,
        deadline: float | None = DEFAULT_DEADLINE,
        cooldown: float | None = None,
    ) -> None:
        """
        Args:
            deadline: Most seconds one call may take, counted on a worker
                thread; None calls *inner* directly and relies on its own
                timeouts.
            cooldown: Seconds after a failure before *inner* is tried again;
                None never tries again in this process.
        """
        self.inner = inner
        self.url = inner.url
        self.deadline = deadline
        self.cooldown = cooldown
        self._lock = threading.Lock()
        # monotonic time until which inner is not called; None while closed.
        self._open_until: float | None = None

    @property
    def available(self) -> bool:
        """
        Whether the next call will reach the remote.
        """
        open_until = self._open_until
        return open_until is None or time.monotonic() >= open_until

    def get(self, key: str) -> bytes | None:
        return self._guard("get", self.inner.get, key, None)

    def put(self, key: str, data: bytes) -> None:
        self._guard("put", self.inner.put, key, None, data)

    def delete(self, key: str) -> None:
        self._guard("delete", self.inner.delete, key, None)

    def close(self) -> None:
        if self._open_until is not None:
            # A call may still hang on a connection that close would wait
            # for; the process is about to drop them anyway.
            return
        try:
            self._call(self.inner.close)
        except Exception as e:
            _log.debug("remote store %s: close failed: %r", self.url, e)

    def _guard(
        self,
        action: str,
        method: Callable[..., _T],
        key: str,
        default: _T,
        *args: object,
    ) -> _T:
        if not self._claim():
            return default
        try:
            result = self._call(method, key, *args)
        except Exception as e:
            self._trip()
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            _warn_once(
                "unavailable",
                self.url,
                f"jobstamps: remote store {self.url} failed ({action} {key}: {reason}); "
                + (
                    "running jobs locally for the rest of this process"
                    if self.cooldown is None
                    else f"running jobs locally for {self.cooldown:g} s"
                ),
                depth=3,  # _guard, this method, SealedStore's
            )
            return default
        if self._open_until is not None:
            with self._lock:
                self._open_until = None
            _log.debug("remote store %s: available again", self.url)
        return result

    def _claim(self) -> bool:
        # While open, nothing reaches inner. Once the cooldown is over, one
        # caller gets to try while the others keep skipping.
        if self._open_until is None:
            return True
        with self._lock:
            open_until = self._open_until
            if open_until is None:
                return True
            now = time.monotonic()
            if now < open_until:
                return False
            self._open_until = now + (self.deadline or DEFAULT_DEADLINE)
            return True

    def _trip(self) -> None:
        with self._lock:
            self._open_until = (
                float("inf")
                if self.cooldown is None
                else time.monotonic() + self.cooldown
            )

    def _call(self, method: Callable[..., _T], *args: object) -> _T:
        if self.deadline is None:
            return method(*args)
        # A daemon thread, not an executor: a call stuck forever (DNS, a
        # black-holed connection) must not keep the process from exiting.
        outcome: list[tuple[bool, typing.Any]] = []
        done = threading.Event()

        def work() -> None:
            try:
                outcome.append((True, method(*args)))
            except BaseException as e:
                outcome.append((False, e))
            finally:
                done.set()

        threading.Thread(target=work, name="jobstamps-remote", daemon=True).start()
        if not done.wait(self.deadline):
            raise RemoteTimeoutError(f"no answer within {self.deadline:g} s")
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return typing.cast("_T", value)

    def __repr__(self) -> str:
        return f"GuardedStore({self.inner!r})"


class SealedStore:
    """
    A remote store whose entries are signed: HMAC-SHA256 under a secret.

    An entry with a missing or wrong signature is a miss, with one warning
    per process for this store: it was written with another secret, or by
    someone who doesn't have it. With no *secret* (a store the user trusts),
    entries are written unsigned and read unchecked.
    """

    def __init__(self, inner: RemoteStore, secret: bytes | None) -> None:
        self.inner = inner
        self.url = inner.url
        self._secret = secret

    @property
    def signed(self) -> bool:
        return self._secret is not None

    def get(self, key: str) -> bytes | None:
        blob = self.inner.get(key)
        if blob is None:
            return None
        data = unseal(self._secret, key, blob)
        if data is None:
            _warn_once(
                "unsigned",
                self.url,
                f"jobstamps: ignoring entry {key} of remote store {self.url}: its "
                f"signature does not match (written with another {SECRET_ENV}, or "
                "not by jobstamps)",
                depth=1,
            )
        return data

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, seal(self._secret, key, data))

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"SealedStore({self.inner!r}, signed={self.signed})"


def open_remote(
    url: str,
    *,
    secret: bytes | str | None = None,
    trust_store: bool = False,
    connect_timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = DEFAULT_DEADLINE,
    cooldown: float | None = None,
    **options: typing.Any,
) -> SealedStore:
    """
    The remote store at *url*, signed, guarded, ready for jobs to share.

    Args:
        url: ``redis://``/``rediss://`` for Redis, any other scheme fsspec
            knows (``s3://bucket/prefix``, ``gs://``, ``file://``,
            ``memory://``...) for a filesystem or object store.
        secret: Signs and checks every entry; defaults to
            ``$JOBSTAMPS_SECRET``. At least 16 bytes; share it only with the
            machines allowed to write the cache.
        trust_store: Use the store without a secret, trusting everyone who
            can write to it: entries hold pickles, and unpickling runs code.
        connect_timeout: Seconds to connect to Redis.
        read_timeout: Seconds Redis may take to answer.
        deadline: Most seconds one call may take, any backend.
        cooldown: Seconds before a failed remote is tried again; None means
            not again in this process.
        options: For Redis, *prefix* (default ``"jobstamps:"``) and *expire*
            (seconds); for fsspec, the filesystem's storage options.

    Raises:
        RemoteStoreError: unknown scheme, driver not installed, or no secret.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _REDIS_SCHEMES and not _fsspec_knows(scheme):
        raise RemoteStoreError(
            f"jobstamps: unknown remote store scheme in {redact(url)!r}; use "
            "redis://, rediss://, or an fsspec URL such as s3://bucket/prefix or file:///path"
        )
    key = _secret(secret, trust_store)
    backend: RemoteStore
    if scheme in _REDIS_SCHEMES:
        backend = RedisStore(
            url, connect_timeout=connect_timeout, read_timeout=read_timeout, **options
        )
    elif scheme in ("s3", "s3a"):
        backend = FsspecStore(
            url, **_s3_options(options, connect_timeout, read_timeout)
        )
        # s3fs retries timeouts itself, 5 times with backoff: a server that
        # accepts and never answers would cost 7 s. Once more is enough,
        # unless the user asked for *retries*.
        backend.filesystem.retries = options.get("retries", _S3_ATTEMPTS)
    else:
        backend = FsspecStore(url, **options)
    return SealedStore(GuardedStore(backend, deadline=deadline, cooldown=cooldown), key)


def _secret(secret: bytes | str | None, trust_store: bool) -> bytes | None:
    if secret is None:
        secret = os.environ.get(SECRET_ENV) or None
    if secret is None:
        if trust_store:
            return None
        raise RemoteStoreError(
            f"jobstamps: a remote store needs a secret to sign its entries: set {SECRET_ENV} "
            "or pass secret= (trust_store=True skips signing, which is dangerous: "
            "anyone who can write to the store can run code on every machine that reads it)"
        )
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        raise RemoteStoreError(
            f"jobstamps: the remote store secret is {len(secret)} bytes; use at least "
            f"{MIN_SECRET_BYTES} random bytes, e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return bytes(secret)


def _fsspec_knows(scheme: str) -> bool:
    if not scheme:
        return False
    try:
        from fsspec.registry import known_implementations, registry
    except ImportError:
        # Say which extra to install rather than "unknown scheme".
        raise _missing_driver(
            scheme, _EXTRAS.get(scheme, "fsspec"), scheme + "://"
        ) from None
    return scheme in known_implementations or scheme in registry


def _s3_options(
    options: Mapping[str, typing.Any], connect: float, read: float
) -> dict[str, typing.Any]:
    # botocore waits 60 s to connect, and retries; the user's config_kwargs
    # win. A filesystem of our own, so that changing its retries does not
    # change anyone else's.
    config = {
        "connect_timeout": connect,
        "read_timeout": read,
        "retries": {"total_max_attempts": 1},
    }
    config.update(options.get("config_kwargs") or {})
    without_retries = {k: v for k, v in options.items() if k != "retries"}
    return {"skip_instance_cache": True, **without_retries, "config_kwargs": config}


def _missing_driver(
    driver: str, extra: str, url: str, error: object = None
) -> RemoteStoreError:
    detail = f" ({error})" if error else ""
    return RemoteStoreError(
        f"jobstamps: the remote store {redact(url)!r} needs {driver}, which is not installed"
        f"{detail}; pip install 'jobstamps[{extra}]'"
    )
