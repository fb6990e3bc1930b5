"""
Remote stores: a second tier of stamps shared between machines.

The local stamp directory stays the first tier. A remote store is read on a
local miss and written after a run, so that a result computed on one machine
is a hit on every other (a CI fleet whose machines all start cold). Pass one
to ``@jobstamped(store=...)`` as a URL, or as any object with the methods of
:class:`RemoteStore`; :func:`open_remote` opens a URL the way jobstamps does.

A remote store only moves opaque bytes under string keys (``"<function
folder>/<hex digest>"``): small entries in memory (``get``, ``put``), large
files streamed in chunks (``get_file``, ``put_file``). A store that can also
hold leases (:class:`RemoteLeases`: Redis can, fsspec stores can't) lets
machines that miss the same stamp wait for the one that runs it.
:func:`open_remote` wraps a backend in two layers, outermost first::

    SealedStore     signs every entry with HMAC-SHA256 and checks it on read;
                    files and leases pass through (a file's key is its
                    content's hash; a lease decides nothing)
    GuardedStore    turns failures and timeouts into misses, warns once, and
                    stops calling a remote that failed
    RedisStore | FsspecStore

(``SealedLeasingStore`` and ``GuardedLeasingStore`` around a store that holds
leases.)

This package is imported only when a remote is configured: it keeps redis,
fsspec and threading off the path of a local hit. It knows nothing of stamps:
:mod:`jobstamps._sharing` turns stamps into entries.
"""

from __future__ import annotations

import os
import typing
import urllib.parse

from ..exceptions import RemoteStoreError
from ._common import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    EXTRAS,
    SECRET_ENV,
    RemoteLeases,
    RemoteStore,
    missing_driver,
    redact,
)
from ._fsspec import FsspecStore
from ._guard import guarded
from ._redis import REDIS_SCHEMES, RedisStore
from ._sealed import SealedStore, sealed

if typing.TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RemoteLeases", "RemoteStore", "open_remote"]

MIN_SECRET_BYTES = 16
_S3_ATTEMPTS = 2


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
    if scheme not in REDIS_SCHEMES and not _fsspec_knows(scheme):
        raise RemoteStoreError(
            f"jobstamps: unknown remote store scheme in {redact(url)!r}; use "
            "redis://, rediss://, or an fsspec URL such as s3://bucket/prefix or file:///path"
        )
    key = _secret(secret, trust_store)
    backend: RemoteStore
    if scheme in REDIS_SCHEMES:
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
    return sealed(guarded(backend, deadline=deadline, cooldown=cooldown), key)


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
        raise missing_driver(
            scheme, EXTRAS.get(scheme, "fsspec"), scheme + "://"
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
