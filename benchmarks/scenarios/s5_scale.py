"""
Scenario 5: hit latency, cycling over 10 stamped calls, in a cache dir holding
1,000,000 stamps of the same function (100,000 with ``--quick``) against one
holding 10; with the process's store warm, and with the store dropped before
each call so that the stamp is read from disk. Target: at most 1.2x.

The million stamps are written straight in the stamp file encoding (through
``internals``) at the paths the store would give them, with random keys, and
kept under ``.envs/data`` for later runs.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from jobstamps import jobstamped

import internals
from envs import DATA
from harness import Bench, Contender
from report import fmt_time


def scale_target(i: int) -> int:
    return i * 2


def run(bench: Bench) -> None:
    drop_stores = internals.store_dropper()
    count = 100_000 if bench.quick else 1_000_000
    big_root = _stamp_farm(bench, count)
    small_root = bench.dir("s5-ten")
    small = jobstamped(cache_dir=small_root)(scale_target)
    big = jobstamped(cache_dir=big_root)(scale_target)
    for i in range(10):
        small(i)
        big(i)
    assert big.out_of_date(3) is None and small.out_of_date(3) is None

    def cycle(fn: Callable[[int], object], reset: bool) -> Callable[[], object]:
        state = [0]

        def op() -> object:
            i = state[0] = (state[0] + 1) % 10
            if reset:
                drop_stores()  # the stamp is read from disk again
            return fn(i)

        return op

    warm_10 = "10 stamps, in-process store warm"
    warm_big = f"{count:,} stamps, in-process store warm"
    read_10 = "10 stamps, stamp re-read each call"
    read_big = f"{count:,} stamps, stamp re-read each call"
    m = bench.measure(
        [
            Contender(warm_10, cycle(small, False)),
            Contender(warm_big, cycle(big, False)),
            Contender(read_10, cycle(small, True)),
            Contender(read_big, cycle(big, True)),
        ]
    )
    r = bench.report
    title = f"5. hit latency with {count:,} stamps in the cache dir vs 10 (per call)"
    r.table(title, [(k, fmt_time(v), "") for k, v in m.items()])
    # All jobstamps; the cache dir of 10 stamps is the baseline.
    kinds = {warm_10: "floor", read_10: "floor", warm_big: "jobstamps"}
    kinds[read_big] = "jobstamps"
    p = r.panel("5", title, m, "s", kinds)
    p.ratio(f"S5 {count:,} vs 10 stamps, store warm", warm_big, warm_10, 1.2)
    p.ratio(f"S5 {count:,} vs 10 stamps, stamp re-read", read_big, read_10, 1.2)
    r.scenarios["5"] = m


def _stamp_farm(bench: Bench, count: int) -> str:
    """
    A cache dir holding *count* valid stamps of ``scale_target`` (random
    keys), written straight in the stamp file encoding where the store would
    put them; kept under .envs/data between runs.
    """
    # Where the store files a stamp of scale_target: its folder, and the
    # fan-out of the digest into subfolders (ab/cd/abcd...).
    probe = Path(bench.dir("s5-probe"))
    jobstamped(cache_dir=str(probe))(scale_target)(0)
    (sample,) = internals.stamp_files(probe)
    folder, *fan_out, name = sample.relative_to(probe).parts
    widths = [len(part) for part in fan_out]
    assert "".join(fan_out) == name[: sum(widths)], sample
    identity = json.dumps(
        {
            "count": count,
            "folder": folder,
            "fan-out": widths,
            "format": internals.stamp_format(),
        }
    )
    root = DATA / f"stamps-{count}"
    marker = root / "complete.json"
    if marker.exists() and marker.read_text() == identity:
        return str(root)
    print(
        f"  writing {count:,} stamp files under {root} (kept for later runs) ...",
        flush=True,
    )
    shutil.rmtree(root, ignore_errors=True)
    encoded = internals.stamp_encoder()
    made: set[str] = set()
    now = time.time_ns()
    rng = random.Random(1)
    for i in range(count):
        digest = rng.randbytes(len(name) // 2).hex()
        levels: list[str] = []
        for width in widths:
            start = sum(len(level) for level in levels)
            levels.append(digest[start : start + width])
        parent = os.path.join(root, folder, *levels)
        if parent not in made:
            os.makedirs(parent, 0o700, exist_ok=True)
            made.add(parent)
        data = encoded(now, pickle.dumps(i * 2, pickle.HIGHEST_PROTOCOL))
        path = os.path.join(parent, digest)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.close(fd)
    marker.write_text(identity)
    os.sync()
    return str(root)
