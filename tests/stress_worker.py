"""
A child process for tests/test_stress.py: ``python stress_worker.py MODE ...``.

Every job appends one line to the counter file (``O_APPEND``, so lines from
concurrent processes never mix) each time its body runs, and returns a value
the parent can recompute, so a lost or wrong value is always noticed.

Modes:
    call GO_FD KEY...      wait on the start pipe, then call work(KEY) for each
    threads GO_FD N KEY... same, from N threads at once per key
    hold KEY               call work(KEY), whose body blocks on stdin forever
    rewrite PATH SECONDS   save valid stamps at PATH over and over
    read PATH SECONDS      load the stamp at PATH over and over
    crashwrite DEP         rewrite DEP and run crashjob(DEP) until killed
    verify DEP             crashjob(DEP) once, checked against DEP

Each mode prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time

from jobstamps import jobstamped
from jobstamps._stampfile import Stamp, StampFormatError
from jobstamps._store import DirectoryStore

CACHE = os.environ["STRESS_CACHE"]
COUNTER = os.environ["STRESS_COUNTER"]
BLOCK = False
# How long a body works: long enough that callers that are not serialised
# would overlap.
WORK_SECONDS = float(os.environ.get("STRESS_WORK_SECONDS", "0"))


def expected(key: str) -> dict[str, object]:
    return {"key": key, "payload": [key] * 2000}


def big(content: bytes) -> tuple[bytes, bytes]:
    # A few MB, so a kill often lands while the stamp is being written.
    return content, content * (4_000_000 // max(len(content), 1))


def count(line: str) -> None:
    fd = os.open(COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@jobstamped(cache_dir=CACHE)
def work(key: str) -> dict[str, object]:
    count(key)
    time.sleep(WORK_SECONDS)
    if BLOCK:
        print(json.dumps({"entered": key}), flush=True)
        sys.stdin.read()  # until killed
    return expected(key)


@jobstamped(cache_dir=CACHE, dependencies=lambda dep: [dep])
def crashjob(dep: str) -> tuple[bytes, bytes]:
    count("crashjob")
    with open(dep, "rb") as file:
        return big(file.read())


def wait_for_start(go_fd: int) -> None:
    # The parent closes the pipe's other end: every child wakes at once.
    print(json.dumps({"ready": os.getpid()}), flush=True)
    os.read(go_fd, 1)


def call(go_fd: str, *keys: str) -> dict[str, object]:
    wait_for_start(int(go_fd))
    bad = [key for key in keys if work(key) != expected(key)]
    return {"calls": len(keys), "bad": bad}


def threads(go_fd: str, n: str, *keys: str) -> dict[str, object]:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    wait_for_start(int(go_fd))
    bad: list[str] = []
    calls = 0
    with ThreadPoolExecutor(int(n)) as pool:
        for key in keys:
            barrier = threading.Barrier(int(n))

            def one(key: str = key, barrier: threading.Barrier = barrier) -> object:
                barrier.wait()
                return work(key)

            for result in [pool.submit(one) for _ in range(int(n))]:
                calls += 1
                if result.result() != expected(key):
                    bad.append(key)
    return {"calls": calls, "bad": bad}


def hold(key: str) -> dict[str, object]:
    global BLOCK
    BLOCK = True
    work(key)
    return {"unreachable": True}


def rewrite(path: str, seconds: str) -> dict[str, object]:
    store = DirectoryStore(os.path.dirname(path))
    deadline = time.monotonic() + float(seconds)
    writes = 0
    while time.monotonic() < deadline:
        value = expected(str(writes % 7))
        store.save(path, Stamp(time.time_ns(), 0, (), (), pickle.dumps(value)))
        writes += 1
    return {"writes": writes}


def read(path: str, seconds: str) -> dict[str, object]:
    deadline = time.monotonic() + float(seconds)
    reads = missing = 0
    bad: list[str] = []
    while time.monotonic() < deadline:
        store = DirectoryStore(os.path.dirname(path))  # nothing remembered
        try:
            stamp = store.load(path)
        except StampFormatError as e:
            bad.append(str(e))
            continue
        if stamp is None:
            missing += 1
            continue
        value = pickle.loads(stamp.result)
        if value != expected(str(value["key"])):
            bad.append(repr(value)[:80])
        reads += 1
    return {"reads": reads, "missing": missing, "bad": bad}


def crashwrite(dep: str) -> dict[str, object]:
    i = 0
    while True:
        with open(dep, "wb") as file:
            file.write(f"version {os.getpid()} {i}".encode())
        crashjob(dep)
        i += 1


def verify(dep: str) -> dict[str, object]:
    with open(dep, "rb") as file:
        content = file.read()
    return {"ok": crashjob(dep) == big(content)}


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    print(json.dumps(globals()[mode](*arguments)), flush=True)
