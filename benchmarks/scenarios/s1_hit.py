"""
Scenario 1: a hit with no dependencies and small arguments, ``f(3)``, through
``@jobstamped`` and the 0.0.20 shim ``jobstamp.run``, against 0.0.20's
``jobstamp.run``, diskcache's ``Cache.memoize``, ``joblib.Memory`` and
``functools.lru_cache`` (the floor).
"""

from __future__ import annotations

import functools

import diskcache  # type: ignore[import-untyped]
import joblib  # type: ignore[import-untyped]
from jobstamps import jobstamp, jobstamped

from harness import Bench, Contender

FLOOR = "floor: functools.lru_cache"


def f(x: int) -> int:
    return x + 1


def run(bench: Bench) -> None:
    deco = jobstamped(cache_dir=bench.dir("s1-deco"))(f)
    shim_dir = bench.dir("s1-shim")
    assert deco(3) == 4 and deco(3) == 4
    assert deco.out_of_date(3) is None
    jobstamp.run(f, 3, jobstamps_cache_output_directory=shim_dir)

    def shim() -> object:
        return jobstamp.run(f, 3, jobstamps_cache_output_directory=shim_dir)

    dc = diskcache.Cache(bench.dir("s1-diskcache"))
    dc_f = dc.memoize()(f)
    dc_f(3)
    jl_f = joblib.Memory(bench.dir("s1-joblib"), verbose=0).cache(f)
    jl_f(3)
    lru = functools.lru_cache(maxsize=None)(f)
    lru(3)
    contenders = [
        Contender("jobstamps @jobstamped", lambda: deco(3)),
        Contender("jobstamps jobstamp.run shim", shim),
        bench.legacy.contender(
            "jobstamps 0.0.20 run", kind="nodeps", cache=bench.dir("s1-legacy")
        ),
        Contender("diskcache memoize", lambda: dc_f(3)),
        Contender("joblib.Memory", lambda: jl_f(3)),
        Contender(FLOOR, lambda: lru(3)),
    ]
    m = bench.measure(contenders)
    dc.close()
    r = bench.report
    title = "1. hit, no dependencies, small arguments (per call)"
    r.times_table(title, m, FLOOR)
    p = r.panel("1", title, m, "s")
    for who in ("jobstamps @jobstamped", "jobstamps jobstamp.run shim"):
        p.ratio(f"S1 {who} / 0.0.20 run", who, "jobstamps 0.0.20 run", 0.25)
        p.ratio(f"S1 {who} / diskcache memoize", who, "diskcache memoize", 0.33)
    r.info(
        "S1 @jobstamped / joblib.Memory",
        m["jobstamps @jobstamped"] / m["joblib.Memory"],
    )
    r.info("S1 @jobstamped / lru_cache", m["jobstamps @jobstamped"] / m[FLOOR])
    r.scenarios["1"] = m
