"""
:class:`GuardedStore`: a circuit breaker that turns a remote store's failures
and timeouts into misses, so a remote that is down never fails a job; and
:class:`GuardedLeasingStore`, the same around a store that holds leases.

Private to :mod:`jobstamps.remote`; knows nothing of stamps or backends.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import typing

from .. import _fs, _log
from ._common import DEFAULT_DEADLINE, has_leases, warn_once

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    from ._common import LeasingStore, RemoteStore


class RemoteTimeoutError(TimeoutError):
    """
    A remote store did not answer within its deadline.
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
        temporary = _fs.temporary_name(path)
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
            self._fail("get_file", key, e)
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
            self._fail(action, key, e)
            return default
        if self._open_until is not None:
            with self._lock:
                self._open_until = None
            _log.debug("remote store %s: available again", self.url)
        return result

    def _fail(self, action: str, key: str, error: Exception) -> None:
        self._trip()
        reason = (
            f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        )
        warn_once(
            "unavailable",
            self.url,
            f"jobstamps: remote store {self.url} failed ({action} {key}: {reason}); "
            + (
                "running jobs locally for the rest of this process"
                if self.cooldown is None
                else f"running jobs locally for {self.cooldown:g} s"
            ),
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
        return f"{type(self).__name__}({self.inner!r})"


class GuardedLeasingStore(GuardedStore):
    """
    A :class:`GuardedStore` around a store that holds leases: lease calls go
    through the same deadline and breaker.

    A lease the remote can't be asked about is granted: a failed
    ``acquire_lease`` answers True and a failed ``renew_lease`` True, so the
    caller runs the job itself, as it would without a remote; a failed
    ``lease_holder`` answers None, and a failed ``release_lease`` does
    nothing (the lease expires on its own).
    """

    inner: LeasingStore

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._guard(
            "acquire_lease", self.inner.acquire_lease, key, True, owner, ttl
        )

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._guard("renew_lease", self.inner.renew_lease, key, True, owner, ttl)

    def release_lease(self, key: str, owner: str) -> None:
        self._guard("release_lease", self.inner.release_lease, key, None, owner)

    def lease_holder(self, key: str) -> str | None:
        return self._guard("lease_holder", self.inner.lease_holder, key, None)


def guarded(
    inner: RemoteStore,
    *,
    deadline: float | None = DEFAULT_DEADLINE,
    cooldown: float | None = None,
) -> GuardedStore:
    """
    *inner* guarded: a :class:`GuardedLeasingStore` if it holds leases.
    """
    kind = GuardedLeasingStore if has_leases(inner) else GuardedStore
    return kind(inner, deadline=deadline, cooldown=cooldown)
