"""
Errors and warnings raised by jobstamps itself.

This module imports nothing from jobstamps, so every other module can use it.
Each error also subclasses the builtin it resembles, so ``except OSError`` or
``except TypeError`` keep working.
"""

from __future__ import annotations


class JobstampsError(Exception):
    """
    Base for errors raised by jobstamps itself.
    """


class CacheDirError(JobstampsError, OSError):
    """
    The stamp directory can't be used: it is a file, or can't be created.
    """


class UnsafeCacheDirError(CacheDirError, PermissionError):
    """
    The stamp directory could be written by another user.

    Stamps hold pickled values and unpickling runs code, so jobstamps refuses
    to read stamps from a directory that someone else could have planted them
    in.
    """


class JobstampsWarning(UserWarning):
    """
    Something went wrong that cost a cached result, never a correct one.

    For example a stamp that could not be written (disk full, read-only
    directory) or a result that can't be pickled: the call still returns its
    freshly computed result.
    """


class RemoteStoreError(JobstampsError, ValueError):
    """
    A remote store can't be configured: unknown URL scheme, missing driver,
    or no secret to sign its entries with.

    Raised when the store is opened, never while a job runs: a remote that is
    slow or down costs a warning and a local run, not an error.
    """


class UnpicklableResultError(JobstampsError, TypeError):
    """
    A job's result can't be pickled, so it can't be stamped.

    Raised only by jobs created with ``strict=True``; otherwise the call
    returns its result unstamped and warns with :class:`JobstampsWarning`.
    """
