"""
``@jobstamped``: the typed face of :class:`._core.Job`.

The wrapper keeps its job in a slot, where neither ``functools.update_wrapper``
(copying the ``__dict__`` of another stamped function, when decorators are
stacked) nor an attribute of the user's callable can replace it. Knows the
decorator's arguments and typing; the rules live in :mod:`._core`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar, overload

from ._core import Job
from ._encode import register_key

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from ._paths import PathSpec
    from ._stampkey import StampKey
    from .remote import RemoteStore

P = ParamSpec("P")
R = TypeVar("R")


class JobstampedFunction(Generic[P, R]):
    """
    A function whose results are stamped: call it as the function itself.

    Besides calling, it answers :meth:`out_of_date`, :meth:`key` and
    :meth:`clear`; ``__wrapped__`` is the undecorated function.
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

    def clear(self) -> None:
        """
        Forget every stamp of this function, whatever its arguments.
        """
        self._jobstamps_job.clear()

    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., R]:
        if instance is None:
            return self
        return BoundJobstampedFunction(self, instance)

    def __repr__(self) -> str:
        return f"<jobstamped {self._jobstamps_job.keys.function}>"


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

    def clear(self) -> None:
        self.__func__.clear()

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
        lease: On a local and a remote miss of a shared stamp, take its lease
            in the remote store (Redis), so that machines missing it at the
            same time wait for the one that runs it; False runs at once.
        lease_wait: Most seconds to wait for the machine holding the lease
            before running anyway; default ``$JOBSTAMPS_LEASE_WAIT``, else
            300. 0 never waits, but still takes a free lease.

    Raises:
        TypeError: An argument above is of the wrong kind; *ignore* names
            something that is neither a parameter nor a closure variable; a
            value the function closes over can't be keyed.
        ValueError: *lease_wait* is negative.
    """

    def decorate(f: Callable[P, R]) -> JobstampedFunction[P, R]:
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
            lease=lease,
            lease_wait=lease_wait,
        )
        return JobstampedFunction(f, job)

    if func is None:
        return decorate
    return decorate(func)


# A stamped function as a value (an argument, a closure value, itself inside
# its own closure) is the function it stamps.
register_key(JobstampedFunction, lambda stamped: stamped.__wrapped__)
register_key(BoundJobstampedFunction, lambda bound: (bound.__func__, bound.__self__))
