"""
The public API as users call it: checked by mypy, never run.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, assert_type

from jobstamps import (
    HashMethod,
    JobstampedFunction,
    Method,
    MTimeMethod,
    Pruned,
    StampKey,
    Stats,
    jobstamp,
    jobstamped,
    out_of_date,
    prune,
    register_key,
    run,
)


@jobstamped
def bare(x: int) -> str:
    return str(x)


@jobstamped(dependencies=lambda path: [path], outputs=[Path("out")], method=HashMethod)
def lint(path: str) -> list[str]:
    return [path]


@jobstamped(
    method=MTimeMethod(),
    cache_dir=Path("stamps"),
    version="2",
    strict=True,
    store="redis://localhost:6379/0",
    secret=b"0123456789abcdef",
    root=Path("."),
    restore_outputs=True,
    lease=True,
    lease_wait=120.0,
)
def convert(src: os.PathLike[str], *, quality: int = 3) -> bytes:
    return b""


s: str = bare(1)
problems: list[str] = lint("a.py")
data: bytes = convert(Path("a"), quality=2)
reason: str | None = lint.out_of_date("a.py")
key: StampKey = lint.key("a.py")
digest: str = key.digest
lint.clear()
wrapped: JobstampedFunction[[str], list[str]] = lint
method: Method = HashMethod()

value: object = run(len, "abc", jobstamps_dependencies=["a"])
stale: str | None = out_of_date(len, "abc")
legacy: object = jobstamp.run(len, "x", jobstamps_method=jobstamp.HashMethod)


@jobstamped(ignore=("verbose", "progress"))
def quiet(path: str, *, verbose: bool = False, progress: object = None) -> int:
    return len(path)


@jobstamped(ignore=["progress"], version=2)
def scaled(x: float, progress: object = None) -> float:
    return x


n: int = quiet("a", verbose=True)
ignored: object = jobstamp.run(quiet, "a", verbose=True, jobstamps_ignore=("verbose",))
closure: tuple[tuple[str, object], ...] = lint.key("a.py").closure


class Matrix:
    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows


def rows_of(matrix: Matrix) -> list[list[float]]:
    return matrix.rows


register_key(Matrix, rows_of)
register_key(Matrix, lambda matrix: tuple(map(tuple, matrix.rows)))


@jobstamped(
    ttl=datetime.timedelta(hours=1),
    env=("CC", "CFLAGS"),
    cache_if=lambda result: result.returncode == 0,
)
def compile_file(path: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["cc", "-c", path], capture_output=True)


@jobstamped(ttl=90, env=["HOME"])
def listing(path: str) -> list[str]:
    return [path]


@jobstamped(ttl=1.5)
async def fetch(url: str, *, retries: int = 3) -> bytes:
    return url.encode()


async def use_fetch() -> None:
    # The awaitable return type of an async def is kept through the decorator.
    pending: Coroutine[Any, Any, bytes] = fetch("https://example.com")
    assert_type(await pending, bytes)
    assert_type(await fetch("https://example.com", retries=1), bytes)
    assert_type(await fetch.refresh("https://example.com"), bytes)
    assert_type(fetch.out_of_date("https://example.com"), str | None)
    assert_type(fetch.key("https://example.com"), StampKey)
    assert_type(fetch.clear(), int)
    assert_type(fetch.stats(), Stats)


done: subprocess.CompletedProcess[bytes] = compile_file("a.c")
redone: subprocess.CompletedProcess[bytes] = compile_file.refresh("a.c")
removed: int = compile_file.clear()
stats: Stats = listing.stats()
hits: int = stats.hits
misses: int = stats.misses
runs: int = stats.runs
saved: float = stats.time_saved
rate: float = stats.hit_rate
environment: tuple[tuple[str, str | None], ...] = listing.key("a").environment

pruned: Pruned = prune(max_size=1 << 30)
pruned_old: Pruned = prune("stamps", older_than=datetime.timedelta(days=7))
pruned_big: Pruned = prune(Path("stamps"), older_than=3600.0, max_size=500 << 20)
freed: int = pruned.removed_bytes + pruned.output_bytes
left: int = pruned.left
failed: tuple[tuple[str, str], ...] = pruned.failed
