"""
The jobstamps 0.0.20 API: ``jobstamp.run`` and ``jobstamp.out_of_date``.

Both take the function, its arguments, and four special keyword arguments
that are consumed here and never passed on:

- ``jobstamps_dependencies``: files the result depends on.
- ``jobstamps_output_files``: files the function writes; a missing one makes
  the job run again.
- ``jobstamps_cache_output_directory``: where stamps are kept (default: the
  same as ``@jobstamped``'s, no longer the shared temporary directory).
- ``jobstamps_method``: :class:`MTimeMethod` (default) or :class:`HashMethod`.
- ``jobstamps_ignore``: names of parameters and closure variables left out
  of the key, as ``ignore=`` of ``@jobstamped``.
"""

from __future__ import annotations

from ._core import Job
from ._methods import HashMethod, MTimeMethod

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HashMethod", "MTimeMethod", "out_of_date", "run"]

_jobs: dict[tuple[object, object, object, object], Job] = {}
_MAX_JOBS = 1024


def run(func: Callable[..., object], /, *args: object, **kwargs: object) -> object:
    """
    ``func(*args, **kwargs)``, from its stamp when nothing it depends on
    changed since the last call with the same arguments.
    """
    job, deps, outs = _job_for(func, kwargs)
    return job.call(args, kwargs, deps, outs)  # type: ignore[arg-type]


def out_of_date(
    func: Callable[..., object], /, *args: object, **kwargs: object
) -> str | None:
    """
    None if ``run`` would return the stamped result; else the path (the
    stamp's, a missing output's, a changed dependency's) that makes it run,
    or ``"JOBSTAMPS_DISABLED"``.
    """
    job, deps, outs = _job_for(func, kwargs)
    return job.out_of_date(args, kwargs, deps, outs)  # type: ignore[arg-type]


def _job_for(
    func: Callable[..., object], kwargs: dict[str, object]
) -> tuple[Job, object, object]:
    # None (no files) lets the job use its own empty lists, checked once.
    deps = kwargs.pop("jobstamps_dependencies", None) or None
    outs = kwargs.pop("jobstamps_output_files", None) or None
    cache_dir = kwargs.pop("jobstamps_cache_output_directory", None) or None
    method = kwargs.pop("jobstamps_method", None) or MTimeMethod
    ignore = kwargs.pop("jobstamps_ignore", None) or ()
    if isinstance(ignore, list | set | frozenset):
        ignore = tuple(ignore)  # hashable, so that the job is found again
    identity = (func, cache_dir, method, ignore)
    try:
        return _jobs[identity], deps, outs
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: nothing to reuse
        return _job(func, method, cache_dir, ignore), deps, outs
    if len(_jobs) >= _MAX_JOBS:
        _jobs.clear()
    # The function's identity (its code digest) is worked out here, once.
    job = _jobs[identity] = _job(func, method, cache_dir, ignore)
    return job, deps, outs


def _job(
    func: Callable[..., object], method: object, cache_dir: object, ignore: object
) -> Job:
    return Job(func, method=method, cache_dir=cache_dir, ignore=ignore)  # type: ignore[arg-type]
