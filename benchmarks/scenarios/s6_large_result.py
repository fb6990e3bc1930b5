"""
Scenario 6: a function returning a 200 MB ``bytes`` object. Its first call
(stamping) against a plain write of the same bytes to a file, and a hit
(loading, the process's store dropped) against a plain read; diskcache and
``joblib.Memory`` timed the same way. Target: throughput at least 0.5x of
the plain write and read.
"""

from __future__ import annotations

import contextlib
import functools
import os

import diskcache  # type: ignore[import-untyped]
import joblib  # type: ignore[import-untyped]
from jobstamps import jobstamped

import internals
from harness import Bench, Contender, then_sync
from report import fmt_rate, fmt_time, rates

STAMP = "jobstamps stamp (first call)"
WRITE = "floor: plain file write"
LOAD = "jobstamps load (hit)"
READ = "floor: plain file read"

PAYLOAD: bytes = b""


def big_result() -> bytes:
    return PAYLOAD


def run(bench: Bench) -> None:
    global PAYLOAD
    size = 200 * 10**6
    PAYLOAD = os.urandom(size)
    deco = jobstamped(cache_dir=bench.dir("s6-deco"))(big_result)
    plain = bench.work / "s6-plain.bin"

    def plain_write() -> None:
        with open(plain, "wb") as file:
            file.write(PAYLOAD)

    def plain_read() -> bytes:
        with open(plain, "rb") as file:
            return file.read()

    def unlink_plain() -> None:
        with contextlib.suppress(FileNotFoundError):
            plain.unlink()

    dc = diskcache.Cache(bench.dir("s6-diskcache"))
    dc_f = dc.memoize()(big_result)
    jl_mem = joblib.Memory(bench.dir("s6-joblib"), verbose=0)
    jl_f = jl_mem.cache(big_result)
    drop_stores = internals.store_dropper()

    def load() -> object:
        drop_stores()
        return deco()

    assert deco() == PAYLOAD
    m_write = bench.measure(
        [
            Contender(STAMP, deco, prepare=then_sync(deco.clear), n=1),
            Contender(WRITE, plain_write, prepare=then_sync(unlink_plain), n=1),
            Contender(
                "diskcache memoize (first call)",
                dc_f,
                prepare=then_sync(dc.clear),
                n=1,
            ),
            Contender(
                "joblib.Memory (first call)",
                jl_f,
                prepare=then_sync(functools.partial(jl_mem.clear, warn=False)),
                n=1,
            ),
        ],
        bench.few_rounds,
    )
    deco()
    dc_f()
    jl_f()
    plain_write()
    m_read = bench.measure(
        [
            Contender(LOAD, load, n=1),
            Contender(READ, plain_read, n=1),
            Contender("diskcache memoize (hit)", dc_f, n=1),
            Contender("joblib.Memory (hit)", jl_f, n=1),
        ],
        bench.few_rounds,
    )
    dc.close()
    r = bench.report
    r.table(
        "6. a 200 MB bytes result: stamp, then load",
        [(k, fmt_rate(size, v), fmt_time(v)) for k, v in {**m_write, **m_read}.items()],
    )
    title = "6. a 200 MB bytes result"
    stamp = r.panel("6a", f"{title}: stamp", rates(size, m_write), "MiB/s")
    stamp.ratio("S6 stamp throughput / plain write", STAMP, WRITE, 0.5)
    load_ = r.panel("6b", f"{title}: load", rates(size, m_read), "MiB/s")
    load_.ratio("S6 load throughput / plain read", LOAD, READ, 0.5)
    r.scenarios["6"] = {**m_write, **m_read}
    PAYLOAD = b""
    deco.clear()
