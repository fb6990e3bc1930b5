"""
``async def`` functions under ``@jobstamped``: a hit is answered in the
event loop without running the body; a miss awaits the body and stamps its
result.

The steps and their rules are :class:`._core.Job`'s (key, load, decide,
fingerprint, stamp, count); this module only orders them around an
``await``:

- Concurrent awaits of one stamp in one event loop share one in-flight run:
  the first caller runs it, the others await it, then read its stamp (when
  it was not stamped, they share its result or its exception).
- Across threads and processes, the stamp's lock (:class:`._lock.StampLock`)
  is waited for in a thread of its own, so that neither the event loop nor
  its default executor is held up. The lock belongs to the task: a task
  that awaits its own stamp again while running it runs it rather than wait
  for itself.
- A remote store is read and written from such a thread too, and another
  machine's run of the stamp (its lease, :mod:`._lease`) is waited for in
  one.

Imported only for ``async def`` functions. Knows asyncio and the job's
steps; nothing of keys, stamp files or stores.
"""

from __future__ import annotations

import _thread
import asyncio
import threading
import time

from . import _config, _counters, _log, _stamping
from ._lock import StampLock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from typing import Any

    from ._core import Job
    from ._freshness import Call
    from ._lease import Lease
    from ._protocol import Method
    from ._stampfile import Dependencies, Stamp
    from ._store import DirectoryStore

# What waiters of a run learn when its owner was cancelled: try again.
_RETRY = object()


class _Flight:
    """
    One run of a stamp in progress in an event loop: the task running it,
    and the future its waiters await.
    """

    __slots__ = ("done", "owner")

    def __init__(self, owner: object, done: asyncio.Future[object]) -> None:
        self.owner = owner
        self.done = done


# In-flight runs by (event loop, stamp path): used from each loop's thread.
_flights: dict[tuple[object, str], _Flight] = {}


async def call(
    job: Job,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    *,
    force: bool = False,
) -> object:
    """
    The result of ``await job.func(*args, **kwargs)``, from its stamp if
    fresh; with *force*, run and stamp even so.
    """
    func: Callable[..., Awaitable[object]] = job.func  # type: ignore[assignment]
    if _config.disabled():
        _log.debug("%s: running, caching is disabled", job.keys.function)
        return await func(*args, **kwargs)
    store, call = job._locate(args, kwargs, None, None)
    method = job._method()
    if not force:
        result, miss = job._local(store, call, method, job.max_age_ns)
        if miss is None:
            _log.debug("%s: hit, using %s", job.keys.function, call.path)
            return result
        _log.debug("%s: running, %s: %s", job.keys.function, miss.reason, miss.path)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    key = (loop, call.path)
    while (flight := _flights.get(key)) is not None:
        if flight.owner is task:
            # Its own stamp, asked for by the run of it: waiting would never end.
            result, _ = await _run(job, store, call, args, kwargs, method, force, None)
            return result
        ended = await asyncio.shield(flight.done)
        if ended is _RETRY:
            continue
        result, miss = job._local(store, call, method, job.max_age_ns)
        if miss is None:
            return result
        shared: object
        error: BaseException | None
        shared, error = ended  # type: ignore[misc]
        if error is not None:
            raise error
        return shared
    flight = _flights[key] = _Flight(task, loop.create_future())
    outcome: object = _RETRY
    try:
        result, _ = await _run(job, store, call, args, kwargs, method, force, task)
        outcome = (result, None)
        return result
    except Exception as e:
        outcome = (None, e)
        raise
    finally:
        if _flights.get(key) is flight:
            del _flights[key]
        flight.done.set_result(outcome)


async def _run(
    job: Job,
    store: DirectoryStore,
    call: Call,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    method: Method,
    force: bool,
    owner: object,
) -> tuple[object, Stamp | None]:
    """
    Ask the remote store, then run the body under the stamp's lock (held by
    *owner*; None when the task holds it already) and stamp its result.
    With a remote store that holds leases, another machine running the same
    job is waited for (in a thread), as by a call of a plain function.
    """
    max_age_ns = job.max_age_ns
    remote = None
    lease = None
    if not force and (job.remote is not None or _config.store_url()):
        remote = await in_thread(job._remote)
        if remote is not None:
            result, fetched = await in_thread(
                job._fetch, remote, store, call, max_age_ns
            )
            if fetched is None:
                return result, None
            if job.lease and _shares(method):
                lease = job._lease(remote, store, call, max_age_ns)
    writable = _stamping.prepare(store, call)
    lock = None if owner is None else StampLock(call.path, owner)
    stamp = None
    try:
        if lock is not None:
            await _acquire(lock)
        try:
            if not force:
                result, miss = job._local(store, call, method, max_age_ns)
                if miss is None:
                    return result, None
            created_ns, fingerprints = _stamping.begin(
                call, method, job.restore_outputs
            )
            if lease is not None and await _wait_or_take(lease, fingerprints):
                return lease.result, None  # a remote hit, as in Job._run
            job._ran(store, force)
            started = time.perf_counter_ns()
            result = await job.func(*args, **kwargs)  # type: ignore[misc]
            duration_ns = time.perf_counter_ns() - started
            stamp = job._stamp(
                store,
                call,
                args,
                kwargs,
                (result, created_ns, duration_ns, fingerprints),
                job.keep,
                writable,
            )
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
        _counters.tick()
        if stamp is not None and (remote or force) and _shares(method):
            remote = remote or await in_thread(job._remote)
            if remote is not None:
                await in_thread(job._publish, remote, store, call.path, stamp)
        return result, stamp
    finally:
        if lease is not None:
            # Once published, as in Job.call; the thread releases the lease
            # even if this task is cancelled while it does.
            await in_thread(lease.release, stamp is not None)
            job._waited(store, lease.waited_ns)


async def _wait_or_take(lease: Lease, fingerprints: Dependencies) -> bool:
    """
    :meth:`._lease.Lease.wait_or_take` in a thread of its own. A caller
    cancelled while waiting holds no lease: a lease the thread takes after
    that, it gives up (marked failed, so that others do not wait for it);
    one taken before, the caller gives up on its way out.
    """
    abandoned = False

    def wait() -> bool:
        found = lease.wait_or_take(fingerprints)
        if abandoned:
            lease.release(published=False)
        return found

    try:
        return bool(await in_thread(wait))
    except BaseException:
        abandoned = True
        raise


def in_thread(func: Callable[..., Any], *args: object) -> asyncio.Future[Any]:
    """
    ``func(*args)`` in a new daemon thread, as a future of the running loop:
    neither the loop nor its default executor waits for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:
        if future.done():
            return  # its awaiter was cancelled
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = func(*args), None
        except BaseException as e:
            result, error = None, e
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed
            pass

    threading.Thread(target=work, name="jobstamps", daemon=True).start()
    return future


async def _acquire(lock: StampLock) -> None:
    """
    Take *lock*, waiting in a thread of its own. A caller cancelled while
    waiting leaves no lock held: the thread lets go of it when it gets it.
    """
    taking = _Taking(lock)
    try:
        await in_thread(taking.take)
    except BaseException:
        taking.abandon()
        raise


class _Taking:
    """
    A lock being taken in another thread, for a caller that may give up.
    """

    __slots__ = ("_abandoned", "_guard", "_lock", "_taken")

    def __init__(self, lock: StampLock) -> None:
        self._lock = lock
        self._guard = _thread.allocate_lock()
        self._taken = False
        self._abandoned = False

    def take(self) -> None:
        self._lock.__enter__()
        with self._guard:
            if not self._abandoned:
                self._taken = True
                return
        self._lock.__exit__(None, None, None)

    def abandon(self) -> None:
        with self._guard:
            self._abandoned = True
            taken = self._taken
        if taken:
            self._lock.__exit__(None, None, None)


def _shares(method: Method) -> bool:
    from ._sharing import shares

    return shares(method)
