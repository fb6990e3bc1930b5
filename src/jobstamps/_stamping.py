"""
How one run becomes a stamp: the folders it needs, the fingerprints taken
before it, and its result pickled, its outputs recorded and the stamp saved
after it, with a warning (never an error) when that can't be done.

Used by :class:`._core.Job` and its ``async`` twin, which decide when a run
happens and hold its lock; this module knows nothing of keys, freshness or
remote stores.
"""

from __future__ import annotations

import os
import time

from . import _log, _methods
from ._stampfile import NOT_WRITTEN, Stamp, pickled
from ._store import cache_dir_error
from .exceptions import CacheDirError, UnpicklableResultError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._freshness import Call
    from ._protocol import Method
    from ._stampfile import Dependencies, Outputs
    from ._store import DirectoryStore


def prepare(store: DirectoryStore, call: Call) -> OSError | None:
    """
    Make the folders of *call*'s stamp; None, or why its stamp won't be
    written (read-only or full: the job still runs, with a warning).

    Raises:
        CacheDirError: the cache directory, or a folder in it, is a file.
    """
    try:
        store.prepare(call.path)
    except CacheDirError:
        raise
    except (FileExistsError, NotADirectoryError) as e:
        raise cache_dir_error(store.root, e) from e
    except OSError as e:
        return e
    return None


def begin(
    call: Call, method: Method, restore_outputs: bool
) -> tuple[int, Dependencies]:
    """
    The time a run about to start starts, and the fingerprints of its
    dependencies: taken first, so that an edit made while the job runs shows
    up as a change next time.

    Raises:
        IsADirectoryError: an output to restore is a directory.
    """
    if restore_outputs and call.outputs:
        from . import _outputs

        _outputs.refuse_directories(call.outputs)
    created_ns = time.time_ns()
    fingerprints = tuple(
        (dep, _methods.fingerprint(dep, method)) for dep in call.dependencies
    )
    return created_ns, fingerprints


def stamp(
    store: DirectoryStore,
    call: Call,
    result: object,
    created_ns: int,
    duration_ns: int,
    fingerprints: Dependencies,
    *,
    keep: Callable[[object], object] | None,
    writable: OSError | None,
    strict: bool,
    restore_outputs: bool,
    function: str,
    label: Callable[[], str],
) -> Stamp | None:
    """
    Stamp the *result* of a run of *function*, unless *keep* refuses it; the
    stamp written, or None (warned about when it can't be written). *label*
    names the call in debug lines and warnings.

    Raises:
        UnpicklableResultError: the result can't be pickled, and *strict*.
        IsADirectoryError: an output to restore is a directory.
    """
    if _log.enabled():
        for output in call.outputs:
            if not os.path.exists(output):
                _log.debug("%s: output %s was not written by the run", label(), output)
    if keep is not None and not keep(result):
        if _log.enabled():
            _log.debug("%s: result not kept, so not stamped", label())
        return None
    if writable is not None:
        _log.warn(f"could not write the stamp of {label()}: {writable}")
        return None
    try:
        pickled_result = pickled(result)
    except Exception as e:
        cause = f"{type(e).__name__}: {e}"
        if strict:
            raise UnpicklableResultError(
                f"jobstamps: the result of {function} can't be "
                f"pickled, so it can't be stamped ({cause}); return a "
                "picklable value, or pass strict=False to return it unstamped"
            ) from None
        _log.warn(
            f"the result of {function} can't be pickled, so it "
            f"was not stamped ({cause})"
        )
        return None
    try:
        made = Stamp(
            created_ns,
            duration_ns,
            fingerprints,
            record_outputs(store.root, call.outputs, restore_outputs),
            pickled_result,
        )
        store.save(call.path, made)
    except OSError as e:
        if isinstance(e, IsADirectoryError) and e.filename in call.outputs:
            raise  # an output that is a directory: refused, not warned
        _log.warn(f"could not write the stamp of {label()}: {e}")
        return None
    return made


def record_outputs(root: str, outs: tuple[str, ...], restore_outputs: bool) -> Outputs:
    """
    What a stamp records of each output: its path, and with
    *restore_outputs* its kept contents; an output the run did not write is
    recorded as such, for ``why()``.
    """
    if not restore_outputs:
        return tuple(
            (path, None, 0 if os.path.exists(path) else NOT_WRITTEN) for path in outs
        )
    from . import _outputs

    return tuple(
        (path, digest, mode if digest else NOT_WRITTEN)
        for path, digest, mode in _outputs.record(root, outs)
    )
