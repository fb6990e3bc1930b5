"""
``@jobstamped``: the typed face of :class:`._core.Job`.

The wrapper keeps its job in a slot, where neither ``functools.update_wrapper``
(copying the ``__dict__`` of another stamped function, when decorators are
stacked) nor an attribute of the user's callable can replace it. An
``async def`` gets :class:`AsyncJobstampedFunction`, whose calls are
awaitable (:mod:`._async`). Knows the decorator's arguments and typing; the
rules live in :mod:`._core` and :mod:`._controls`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from ._controls import env_names, max_age_ns
from ._core import Job
from ._encode import register_key

if TYPE_CHECKING:
    import datetime
    import os
    from collections.abc import Iterable

    from ._paths import PathSpec
    from ._stampkey import StampKey
    from ._stats import Stats
    from .remote import RemoteStore

P = ParamSpec("P")
R = TypeVar("R")


class JobstampedFunction(Generic[P, R]):
    """
    A function whose results are stamped: call it as the function itself.

    Besides calling, it answers :meth:`out_of_date`, :meth:`key`,
    :meth:`refresh`, :meth:`clear` and :meth:`stats`; ``__wrapped__`` is the
    undecorated function.
    """

    __slots__ = ("__dict__", "__weakref__", "_jobstamps_job")

    __wrapped__: Callable[P, R]

    def __init__(self, func: Callable[P, R], job: Job) -> None:
        self._jobstamps_job = job
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._jobstamps_job.call(args, kwargs)  # type: ignore[return-value]

    def out_of_date(self, *args: P.args, **kwargs: P.kwargs) -> str | None:
        """
        None if this call would return its stamped result without running.

        Otherwise the path that makes it run: the stamp's own path when there
        is no stamp, the first missing output, or the first missing or changed
        dependency; ``"JOBSTAMPS_DISABLED"`` while caching is disabled.
        """
        return self._jobstamps_job.out_of_date(args, kwargs)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> StampKey:
        """
        The :class:`~jobstamps.StampKey` this call is stamped under.
        """
        return self._jobstamps_job.key(args, kwargs)

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Run this call now and stamp its result, even if its stamp is fresh;
        return the result (awaitable, for an ``async def``).
        """
        return self._jobstamps_job.call(args, kwargs, force=True)  # type: ignore[return-value]

    def clear(self) -> int:
        """
        Forget every stamp of this function, whatever its arguments; how many
        there were.
        """
        return self._jobstamps_job.clear()

    def stats(self) -> Stats:
        """
        The hits, misses, runs and time saved of this function in its cache
        directory, counted by every process (this one included) since they
        were last zeroed (``jobstamp cache stats --zero``).
        """
        return self._jobstamps_job.stats()

    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., R]:
        if instance is None:
            return self
        return BoundJobstampedFunction(self, instance)

    def __repr__(self) -> str:
        return f"<jobstamped {self._jobstamps_job.keys.function}>"


class AsyncJobstampedFunction(JobstampedFunction[P, R]):
    """
    A stamped ``async def``: ``await f(...)`` returns the stamped result of a
    hit without running the body; on a miss it awaits the body and stamps
    its result. :meth:`refresh` is awaitable too; the other methods are not.
    """

    __slots__ = ()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        from ._async import call

        return call(self._jobstamps_job, args, kwargs)  # type: ignore[return-value]

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        from ._async import call

        return call(self._jobstamps_job, args, kwargs, force=True)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<jobstamped async {self._jobstamps_job.keys.function}>"


class BoundJobstampedFunction(Generic[R]):
    """
    A stamped method of one object: the object is the first argument, keyed
    like any other (by its fields or its repr).
    """

    def __init__(self, function: JobstampedFunction[..., R], instance: object) -> None:
        self.__func__ = function
        self.__self__ = instance

    def __call__(self, *args: object, **kwargs: object) -> R:
        return self.__func__(self.__self__, *args, **kwargs)

    def out_of_date(self, *args: object, **kwargs: object) -> str | None:
        return self.__func__.out_of_date(self.__self__, *args, **kwargs)

    def key(self, *args: object, **kwargs: object) -> StampKey:
        return self.__func__.key(self.__self__, *args, **kwargs)

    def refresh(self, *args: object, **kwargs: object) -> R:
        return self.__func__.refresh(self.__self__, *args, **kwargs)

    def clear(self) -> int:
        return self.__func__.clear()

    def stats(self) -> Stats:
        return self.__func__.stats()

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"


@overload
def jobstamped(func: Callable[P, R], /) -> JobstampedFunction[P, R]: ...


@overload
def jobstamped(
    *,
    dependencies: PathSpec = None,
    outputs: PathSpec = None,
    method: object = None,
    cache_dir: str | os.PathLike[str] | None = None,
    version: object = None,
    strict: bool = False,
    store: str | RemoteStore | None = None,
    secret: bytes | str | None = None,
    trust_store: bool = False,
    root: str | os.PathLike[str] | None = None,
    restore_outputs: bool = False,
    ignore: Iterable[str] = (),
    ttl: float | datetime.timedelta | None = None,
    env: Iterable[str] = (),
    cache_if: Callable[[Any], object] | None = None,
    lease: bool = True,
    lease_wait: float | None = None,
) -> Callable[[Callable[P, R]], JobstampedFunction[P, R]]: ...


def jobstamped(
    func: Callable[P, R] | None = None,
    /,
    *,
    dependencies: PathSpec = None,
    outputs: PathSpec = None,
    method: object = None,
    cache_dir: str | os.PathLike[str] | None = None,
    version: object = None,
    strict: bool = False,
    store: str | RemoteStore | None = None,
    secret: bytes | str | None = None,
    trust_store: bool = False,
    root: str | os.PathLike[str] | None = None,
    restore_outputs: bool = False,
    ignore: Iterable[str] = (),
    ttl: float | datetime.timedelta | None = None,
    env: Iterable[str] = (),
    cache_if: Callable[[Any], object] | None = None,
    lease: bool = True,
    lease_wait: float | None = None,
) -> JobstampedFunction[P, R] | Callable[[Callable[P, R]], JobstampedFunction[P, R]]:
    """
    Run the decorated function only when its arguments or files changed.

    A call returns the stamped result of an earlier call with the same
    arguments, without running, while every output exists and no dependency
    changed. Works bare (``@jobstamped``) or with arguments.

    Args:
        dependencies: The files the result depends on: an iterable of paths,
            or a callable that receives the function's arguments and returns
            one.
        outputs: The files the function writes, in the same forms; a missing
            one makes the call run again.
        method: How a changed dependency is told: :class:`MTimeMethod`
            (default), :class:`HashMethod`, or any :class:`Method`, as a class
            or an instance.
        cache_dir: Where stamps are kept; default ``$JOBSTAMPS_CACHE_DIR``,
            else the user's cache directory.
        version: Part of every key: change it when the function's behaviour
            changes, to retire its old stamps.
        strict: Raise :class:`~jobstamps.exceptions.UnpicklableResultError`
            when a result can't be pickled, instead of returning it unstamped
            with a warning.
        store: A remote store shared between machines, as a URL
            (``redis://host:6379/0``, ``s3://bucket/prefix``, any fsspec URL)
            or a store object; default ``$JOBSTAMPS_STORE``, else none. It is
            read when the local stamp misses and written after a run.
        secret: The key that signs the remote store's entries (HMAC-SHA256);
            default ``$JOBSTAMPS_SECRET``. A remote store without one is
            refused, unless *trust_store* is true.
        trust_store: Read and write unsigned remote entries. Dangerous: whoever
            can write to the store can run code in every process that reads
            it.
        root: The folder dependencies and outputs are named relative to in
            shared stamps; default ``$JOBSTAMPS_ROOT``, else the enclosing git
            work tree, else the current directory.
        restore_outputs: Keep the output files' contents with the stamp, so a
            hit whose outputs are missing writes them back instead of running.
        ignore: Names of parameters left out of the key (naming a ``*args``
            or ``**kwargs`` parameter leaves out all it collects), and of
            closure variables left out of the function's identity: say
            ``ignore=("verbose", "progress")``. Calls that differ only in
            those share a stamp.
        ttl: A stamp older than this (seconds, or a
            :class:`datetime.timedelta`), counted from when its run started,
            is stale, as with ``jobstamp --ttl``.
        env: Names of environment variables whose values are part of the
            key, as with ``jobstamp --env``: a variable not set and one set
            to the empty string differ.
        cache_if: Given each result the function returns; the result is
            stamped only when this returns true, say ``cache_if=lambda r:
            r.returncode == 0`` (as ``jobstamp --discard-failures`` does for
            commands). An exception from it propagates, and nothing is
            stamped.
        lease: On a local and a remote miss of a shared stamp, take its lease
            in the remote store (Redis), so that machines missing it at the
            same time wait for the one that runs it; False runs at once.
        lease_wait: Most seconds to wait for the machine holding the lease
            before running anyway; default ``$JOBSTAMPS_LEASE_WAIT``, else
            300. 0 never waits, but still takes a free lease.

    Raises:
        TypeError: An argument above is of the wrong kind; *ignore* names
            something that is neither a parameter nor a closure variable; a
            value the function closes over can't be keyed; the decorated
            object is a class, a generator function, or not callable.
        ValueError: *ttl* is not more than zero; *env* holds something that
            is not the name of a variable; *lease_wait* is negative.
    """
    max_age = None if ttl is None else max_age_ns(ttl)
    names = env_names(env)
    if cache_if is not None and not callable(cache_if):
        raise TypeError(f"jobstamps: cache_if must be callable, not {cache_if!r}")

    def decorate(f: Callable[P, R]) -> JobstampedFunction[P, R]:
        is_async = _is_async(f)
        job = Job(
            f,
            dependencies=dependencies,
            outputs=outputs,
            method=method,
            cache_dir=cache_dir,
            version=version,
            strict=strict,
            store=store,
            secret=secret,
            trust_store=trust_store,
            root=root,
            restore_outputs=restore_outputs,
            ignore=ignore,
            env=names,
            max_age_ns=max_age,
            keep=cache_if,
            lease=lease,
            lease_wait=lease_wait,
        )
        if is_async:
            return AsyncJobstampedFunction(f, job)
        return JobstampedFunction(f, job)

    if func is None:
        return decorate
    return decorate(func)


_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


def _is_async(func: object) -> bool:
    """
    Whether *func* is an ``async def`` (or a partial, method or stamped
    function of one).

    Raises:
        TypeError: *func* is not callable, is a class, or a generator
            function (sync or async): its results can't be stamped.
    """
    if isinstance(func, type):
        raise TypeError(
            f"jobstamps caches functions, not classes: {func.__qualname__} is a "
            "class; decorate a function (or a method) that returns its instance"
        )
    if not callable(func):
        raise TypeError(f"jobstamps caches functions: {func!r} is not callable")
    inner: Any = func
    while True:
        if isinstance(inner, functools.partial):
            inner = inner.func
        elif isinstance(inner, MethodType):
            inner = inner.__func__
        else:
            break
    if isinstance(inner, AsyncJobstampedFunction):
        return True
    if type(inner) is not FunctionType:
        inner = type(inner).__call__  # a callable object
        if type(inner) is not FunctionType:
            return False
    flags = inner.__code__.co_flags
    if flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
        kind = "an async generator" if flags & _CO_ASYNC_GENERATOR else "a generator"
        raise TypeError(
            f"jobstamps can't stamp {kind} function ({getattr(func, '__qualname__', func)}): "
            "what it yields is produced as it is iterated; return a list instead"
        )
    return bool(flags & _CO_COROUTINE) or (
        hasattr(inner, "_is_coroutine_marker") and _marked_coroutine(inner)
    )


def _marked_coroutine(func: object) -> bool:
    # inspect.markcoroutinefunction() (Python 3.12): a sync function that
    # returns an awaitable. Only inspect can tell its mark.
    import inspect

    return inspect.iscoroutinefunction(func)


# A stamped function as a value (an argument, a closure value, itself inside
# its own closure) is the function it stamps.
register_key(JobstampedFunction, lambda stamped: stamped.__wrapped__)
register_key(BoundJobstampedFunction, lambda bound: (bound.__func__, bound.__self__))
