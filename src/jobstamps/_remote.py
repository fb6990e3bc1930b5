"""
Remote stores: a second tier of stamps shared between machines.

The local stamp directory stays the first tier. A remote store is read on a
local miss and written after a run, so that a result computed on one machine
is a hit on every other (a CI fleet whose machines all start cold).

A remote store only moves opaque bytes under string keys (``"<function
folder>/<hex digest>"``): small entries in memory (``get``, ``put``), large
files streamed in chunks (``get_file``, ``put_file``). Three layers wrap a
backend, outermost first::

    SealedStore     signs every entry with HMAC-SHA256 and checks it on read;
                    files pass through (their keys are their content's hash)
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
    from collections.abc import Callable, Iterable, Mapping

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
# complete, and have no cheap rename, so they are written directly. memory://
# publishes a file as soon as it is opened, so it is written aside too.
_RENAMING_PROTOCOLS = frozenset({"file", "local", "sftp", "ssh", "memory"})
# Files are read, written and sent in chunks of this many bytes.
_CHUNK = 1 << 20
# Seconds a Redis upload in progress may last before its temporary key expires.
_UPLOAD_EXPIRE = 3600
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

    def exists(self, key: str) -> bool:
        """
        Whether something is stored under *key*, without reading it.
        """

    def put_file(self, key: str, path: str) -> None:
        """
        Store the content of the local file *path* under *key*, in chunks.

        Readers see the whole file under *key* or what was there before,
        never part of it.
        """

    def get_file(self, key: str, path: str) -> bool:
        """
        Write what is stored under *key* to the local file *path*, in chunks.

        *path* is replaced only once the whole content has arrived; a failed
        download leaves it as it was. Returns False, and writes nothing, if
        there is nothing under *key*.
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


def _temporary_path(path: str) -> str:
    # Next to *path*, so that os.replace moves it in place atomically.
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")


def _write_local(path: str, chunks: Iterable[bytes | memoryview]) -> None:
    """
    Write *chunks* to a temporary file next to *path*, then move it in place.

    If *chunks* fails, *path* is left as it was and the temporary file is
    removed.
    """
    temporary = _temporary_path(path)
    # Created as open() would (mode 0o666 less the umask), never over a file.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _read_chunks(file: typing.BinaryIO) -> Iterable[bytes]:
    while chunk := file.read(_CHUNK):
        yield chunk


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
                for chunk in _read_chunks(file):
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
        _write_local(path, self._windows(key, size))
        return True

    def _windows(self, key: str, size: int) -> Iterable[bytes]:
        # GETRANGE's end is inclusive. The last window asks for one byte
        # more than *size*: an entry that shrank or grew since STRLEN fails
        # instead of being written cut or mixed.
        name = self.prefix + key
        offset = 0
        while True:
            want = min(_CHUNK, size - offset)
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
        view = memoryview(data)
        self._publish(
            self.path(key),
            (view[start : start + _CHUNK] for start in range(0, len(view), _CHUNK)),
        )

    def put_file(self, key: str, path: str) -> None:
        target = self.path(key)
        with open(path, "rb") as file:
            self._publish(target, _read_chunks(file))

    def _publish(self, path: str, chunks: Iterable[bytes | memoryview]) -> None:
        if not self._rename:
            self._write(path, chunks)
            return
        self._fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        temporary = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        try:
            self._write(temporary, chunks)
            self._fs.mv(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm_file(temporary)
            raise

    def _write(self, path: str, chunks: Iterable[bytes | memoryview]) -> None:
        # In chunks, so that object stores can upload in parts as they go.
        file = self._fs.open(path, "wb")
        try:
            for chunk in chunks:
                file.write(chunk)
        except BaseException:
            # Closing would publish what was written so far: throw it away
            # instead (s3fs aborts its multipart upload), and mark the file
            # closed so that its __del__ does not commit it either.
            with contextlib.suppress(Exception):
                file.discard()
                file.closed = True
            raise
        file.close()

    def get_file(self, key: str, path: str) -> bool:
        try:
            file = self._fs.open(self.path(key), "rb", block_size=_CHUNK)
        except FileNotFoundError:
            return False
        with file:
            _write_local(path, _read_chunks(file))
        return True

    def exists(self, key: str) -> bool:
        # Not fs.exists, which answers False for any error: a remote that is
        # down must fail here, for the guard to see it.
        try:
            self._fs.info(self.path(key))
        except FileNotFoundError:
            return False
        return True

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


class RemoteStoreIOError(OSError):
    """
    A file transfer found the remote entry changed or gone midway.
    """


_T = typing.TypeVar("_T")


class GuardedStore:
    """
    A remote store that never fails the job: a circuit breaker around *inner*.

    Any exception from *inner*, or a call that takes longer than *deadline*
    seconds, makes that call a miss (``get``, ``exists`` and ``get_file``
    answer None or False) or a no-op (``put``, ``put_file``, ``delete``),
    warns once per process for this store, and opens the
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

    def exists(self, key: str) -> bool:
        return self._guard("exists", self.inner.exists, key, False)

    def put_file(self, key: str, path: str) -> None:
        self._guard("put_file", self.inner.put_file, key, None, path)

    def get_file(self, key: str, path: str) -> bool:
        # *inner* downloads to a name of this call's own, moved onto *path*
        # here: a download abandoned at the deadline goes on in its thread,
        # and must not replace *path* (or leave a file) when it ends.
        temporary = _temporary_path(path)
        lock = threading.Lock()
        abandoned = False

        def download(key: str) -> bool:
            found = self.inner.get_file(key, temporary)
            with lock:
                if abandoned:
                    with contextlib.suppress(OSError):
                        os.unlink(temporary)
            return found

        try:
            found = self._guard("get_file", download, key, False)
            if found:
                os.replace(temporary, path)
            return found
        except OSError as e:
            # The download arrived but can't take *path*'s place (a
            # directory is there): a failure like the others.
            self._fail("get_file", key, e, depth=2)  # get_file, SealedStore's
            return False
        finally:
            with lock:
                abandoned = True
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

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
            self._fail(action, key, e, depth=3)  # _guard, public method, SealedStore's
            return default
        if self._open_until is not None:
            with self._lock:
                self._open_until = None
            _log.debug("remote store %s: available again", self.url)
        return result

    def _fail(self, action: str, key: str, error: Exception, depth: int) -> None:
        # *depth*: frames from the caller up to the outermost store method,
        # as for _warn_once.
        self._trip()
        reason = (
            f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        )
        _warn_once(
            "unavailable",
            self.url,
            f"jobstamps: remote store {self.url} failed ({action} {key}: {reason}); "
            + (
                "running jobs locally for the rest of this process"
                if self.cooldown is None
                else f"running jobs locally for {self.cooldown:g} s"
            ),
            depth=depth + 1,
        )

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

    Files (``put_file``, ``get_file``) are not signed: they are stored under
    the SHA-256 of their content, the caller checks that digest after a
    download, and the signed stamp that names them is what vouches for
    them. They, and ``exists``, pass through to *inner* unchanged.
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

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def put_file(self, key: str, path: str) -> None:
        self.inner.put_file(key, path)

    def get_file(self, key: str, path: str) -> bool:
        return self.inner.get_file(key, path)

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
