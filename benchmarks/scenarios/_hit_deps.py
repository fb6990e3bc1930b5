"""
Scenarios 2 and 3 alike: a hit of a job with 1,000 dependency files, through
``@jobstamped`` and the 0.0.20 shim, against 0.0.20's ``jobstamp.run`` and a
bare loop of ``os.stat`` over the same files (the floor). Only the method and
the target differ between the two.
"""

from __future__ import annotations

import os

from jobstamps import HashMethod, MTimeMethod, jobstamp, jobstamped

from harness import Bench, Contender, make_files

FLOOR = "floor: os.stat loop"


def deps_target(x: int) -> int:
    return x + 1


def run_with(bench: Bench, number: str, method_name: str, limit: float) -> None:
    """
    Scenario *number*, with ``MTimeMethod`` ("mtime") or ``HashMethod``
    ("hash"); the hit must take at most *limit* times the floor.
    """
    method = MTimeMethod if method_name == "mtime" else HashMethod
    paths = make_files(bench.work / f"s{number}-files", 1000, 2048)
    paths_file = bench.work / f"s{number}-paths.txt"
    paths_file.write_text("\n".join(paths))
    deco = jobstamped(
        dependencies=paths, method=method, cache_dir=bench.dir(f"s{number}-deco")
    )(deps_target)
    deco(3)
    assert deco.out_of_date(3) is None
    shim_dir = bench.dir(f"s{number}-shim")

    def shim() -> object:
        return jobstamp.run(
            deps_target,
            3,
            jobstamps_dependencies=paths,
            jobstamps_cache_output_directory=shim_dir,
            jobstamps_method=method,
        )

    shim()
    stat = os.stat

    def stat_loop() -> None:
        for p in paths:
            stat(p)

    contenders = [
        Contender("jobstamps @jobstamped", lambda: deco(3)),
        Contender("jobstamps jobstamp.run shim", shim),
        Contender(FLOOR, stat_loop),
        bench.legacy.contender(
            "jobstamps 0.0.20 run",
            kind="deps",
            cache=bench.dir(f"s{number}-legacy"),
            paths_file=str(paths_file),
            method=method_name,
        ),
    ]
    m = bench.measure(contenders)
    title = "MTimeMethod" if method_name == "mtime" else "HashMethod, files unchanged"
    r = bench.report
    title = f"{number}. hit, 1,000 dependency files, {title} (per call)"
    r.times_table(title, m, FLOOR)
    p = r.panel(number, title, m, "s")
    p.ratio(
        f"S{number} @jobstamped / os.stat loop", "jobstamps @jobstamped", FLOOR, limit
    )
    r.info(
        f"S{number} jobstamp.run shim / os.stat loop",
        m["jobstamps jobstamp.run shim"] / m[FLOOR],
    )
    r.info(
        f"S{number} @jobstamped / 0.0.20 run",
        m["jobstamps @jobstamped"] / m["jobstamps 0.0.20 run"],
    )
    r.scenarios[number] = m
