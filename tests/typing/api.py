"""
The public API as users call it: checked by mypy, never run.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobstamps import (
    HashMethod,
    JobstampedFunction,
    Method,
    MTimeMethod,
    StampKey,
    jobstamp,
    jobstamped,
    out_of_date,
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
