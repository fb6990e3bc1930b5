"""
The one decision: is a stamp still good for a call, and if not, why.

:func:`stale` answers with None (fresh) or a :class:`Miss` naming the file
that makes the call run and the reason. A call, ``out_of_date``, a stamp
fetched from a remote store and ``jobstamp cache`` all ask it; nothing else
compares dependencies, outputs or ages.

This module reads stamps and stats files; it knows neither where stamps are
stored nor how outputs are kept (it is handed a *restorable* predicate), and
it never runs anything.
"""

from __future__ import annotations

import os
import time

from . import _methods

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._protocol import Fingerprint, Method
    from ._stampfile import Dependencies, Stamp

    _Signature = tuple[str, int | None, int | None, int | None, int]
    _QuickCheck = tuple[Dependencies, tuple[str, ...], tuple[_Signature, ...], bool]


class Miss:
    """
    Why a call must run: the file at *path* (or the stamp's own path), and
    *reason*, say ``"dependency changed"``.
    """

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Miss):
            return NotImplemented
        return (self.path, self.reason) == (other.path, other.reason)

    def __hash__(self) -> int:
        return hash((self.path, self.reason))

    def __repr__(self) -> str:
        return f"Miss({self.path!r}, {self.reason!r})"


class Call:
    """
    One call as freshness sees it: where its stamp is, and the files it
    depends on and writes.

    After :func:`stale` found it fresh, *refreshed* holds the stamp's
    dependencies with fingerprints the method renewed (same content, new
    stat), worth writing back so the next check is cheap; else None.
    """

    __slots__ = ("dependencies", "outputs", "path", "refreshed")

    def __init__(
        self, path: str, dependencies: tuple[str, ...], outputs: tuple[str, ...]
    ) -> None:
        self.path = path
        self.dependencies = dependencies
        self.outputs = outputs
        self.refreshed: Dependencies | None = None


def stale(
    stamp: Stamp | None,
    call: Call,
    method: Method,
    max_age_ns: int | None = None,
    restorable: Callable[[str], bool] | None = None,
    *,
    local: bool = True,
) -> Miss | None:
    """
    Why *call* must run rather than use *stamp*, or None if it need not.

    Fresh means: a stamp exists, every output exists, *method* finds every
    dependency unchanged (one added to or removed from the list is a change,
    a new order is not), and, with *max_age_ns*, the stamp is not older.

    Args:
        restorable: Given when missing outputs are written back from kept
            contents: whether a missing output could be. Outputs are then
            checked last, so a changed dependency is reported before an
            output that would be restored in vain.
        local: Whether *stamp* was read from its file at *call*'s path,
            whose modification time then counts towards its age; a stamp
            from a remote store is as old as its recorded creation time.
    """
    call.refreshed = None
    if stamp is None:
        return Miss(call.path, "no stamp")
    if restorable is None:
        for output in call.outputs:
            if not os.path.exists(output):
                return Miss(output, "output missing")
    miss = _changed(stamp, call, method)
    if (
        miss is None
        and max_age_ns is not None
        and _expired(stamp, call.path if local else None, max_age_ns)
    ):
        call.refreshed = None
        miss = Miss(call.path, "stamp expired")
    if miss is None and restorable is not None:
        for output in call.outputs:
            if not os.path.exists(output) and not restorable(output):
                return Miss(output, "output missing")
    return miss


def born_ns(stamp: Stamp, written_ns: int | None = None, now_ns: int = 0) -> int:
    """
    When *stamp* counts as made: its recorded creation time (when its run
    started, on whichever machine), or, for a stamp file written at
    *written_ns*, the earlier of the two, so that a refreshed stamp keeps its
    run's start time and a file aged by hand (``os.utime``, a restored cache)
    counts as old. A time after *now_ns* (another machine's clock running
    ahead) counts as *now_ns*, never as fresh for longer.
    """
    born = stamp.created_ns
    if written_ns is not None and written_ns < born:
        born = written_ns
    if now_ns and born > now_ns:
        born = now_ns
    return born


def _expired(stamp: Stamp, path: str | None, max_age_ns: int) -> bool:
    written_ns = None
    if path is not None:
        try:
            written_ns = os.stat(path).st_mtime_ns
        except OSError:
            pass  # gone since it was read: its recorded creation time counts
    now = time.time_ns()
    return now - born_ns(stamp, written_ns, now) > max_age_ns


def _changed(stamp: Stamp, call: Call, method: Method) -> Miss | None:
    deps = call.dependencies
    recorded: Dependencies = stamp.dependencies
    if not deps and not recorded:
        return None
    if _unchanged(recorded, deps, method):
        return None
    if len(recorded) != len(deps) or any(
        r[0] != d for r, d in zip(recorded, deps, strict=True)
    ):
        then = dict(recorded)
        added = next((d for d in deps if d not in then), None)
        if added is not None:
            return Miss(added, "dependency added")
        removed = next((p for p, _ in recorded if p not in set(deps)), None)
        if removed is not None:
            return Miss(removed, "dependency removed")
        recorded = tuple((d, then[d]) for d in deps)  # same files, new order
    refreshed: list[tuple[str, Fingerprint | None]] | None = None
    for i, (dep, fingerprint) in enumerate(recorded):
        st = _methods.stat_dependency(dep)
        if st is None:
            return Miss(dep, "dependency missing")
        if fingerprint is None:
            return Miss(dep, "dependency appeared")
        now = method.check(dep, st, fingerprint)
        if now is None:
            return Miss(dep, "dependency changed")
        if now != fingerprint:
            if refreshed is None:
                refreshed = list(recorded)
            refreshed[i] = (dep, now)
    if refreshed is not None:
        call.refreshed = tuple(refreshed)
    return None


# What the quick check derives from a recorded dependency list, so that a
# stamp the store remembers is prepared once, not on every hit: keyed by the
# id of the stamp's `dependencies` tuple, which the entry keeps alive (so the
# id can't be reused) and compares by identity. Without the quick check,
# scenario 3 of benchmarks/run.py (1,000 dependencies, HashMethod) takes
# 1.22x as long (2.72 -> 3.33 ms), over its target of 1.3x the os.stat loop.
_prepared: dict[int, _QuickCheck] = {}
_PREPARED_COUNT = 4096


def _unchanged(recorded: Dependencies, deps: tuple[str, ...], method: Method) -> bool:
    """
    True when the built-in *method* would find every dependency unchanged
    because its stat signature is the one recorded: one ``stat`` per file and
    no more. False means "not proven", and the full check decides.
    """
    cls = type(method)
    if cls is not _methods.MTimeMethod and cls is not _methods.HashMethod:
        return False  # other methods decide for themselves, file by file
    prepared = _prepared.get(id(recorded))
    if prepared is None or prepared[0] is not recorded:
        prepared = _prepare(recorded)
        if len(_prepared) >= _PREPARED_COUNT:
            _prepared.clear()
        _prepared[id(recorded)] = prepared
    _, paths, signatures, trusted = prepared
    if paths != deps or not trusted:
        # Some stat is too recent to prove its content unchanged: both
        # methods then read that file.
        return False
    stat = os.stat
    try:
        # Still one stat per file: the signature's four fields come with it.
        for dep, mtime_ns, ctime_ns, ino, size in signatures:
            st = stat(dep)
            if (
                st.st_mtime_ns != mtime_ns
                or st.st_ctime_ns != ctime_ns
                or st.st_ino != ino
                or st.st_size != size
            ):
                return False
    except OSError:
        return False
    return True


def _prepare(recorded: Dependencies) -> _QuickCheck:
    """
    *recorded*, its paths, their stat signatures, and whether every one of
    them was taken long enough after its file's times to be trusted.

    A fingerprint without a signature of this machine (a remote stamp's, a
    missing file's, another method's) gets one that no file matches.
    """
    paths = tuple(dep for dep, _ in recorded)
    signatures: list[_Signature] = []
    trusted = True
    for dep, fingerprint in recorded:
        if fingerprint is None or len(fingerprint) != 6:
            signatures.append((dep, None, None, None, -1))
            continue
        signatures.append(
            (dep, fingerprint[0], fingerprint[4], fingerprint[5], fingerprint[1])
        )
        if _methods.racy(fingerprint):
            trusted = False
    return recorded, paths, tuple(signatures), trusted
