"""
Times jobstamps 0.0.20 on request, inside the virtual environment that holds
it (it is imported as ``jobstamps`` too, so it can't share a process with the
project).

Reads one JSON command per line on stdin and answers one JSON line on stdout:

- ``{"cmd": "setup", "name": N, "kind": "nodeps" | "deps", "cache": DIR,
  "paths_file": FILE, "method": "mtime" | "hash"}`` makes the stamp (one call)
  and keeps the operation under *name*;
- ``{"cmd": "time", "name": N, "n": COUNT}`` runs it COUNT times and answers
  the total seconds;
- ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import sys
import time

from jobstamps import jobstamp


def f(x):
    return x + 1


def _setup(request):
    kwargs = {"jobstamps_cache_output_directory": request["cache"]}
    if request["kind"] == "deps":
        with open(request["paths_file"], encoding="utf-8") as file:
            kwargs["jobstamps_dependencies"] = file.read().splitlines()
        hashes = request["method"] == "hash"
        kwargs["jobstamps_method"] = (
            jobstamp.HashMethod if hashes else jobstamp.MTimeMethod
        )

    def op():
        return jobstamp.run(f, 3, **kwargs)

    op()  # the miss that writes the stamp
    stale = jobstamp.out_of_date(f, 3, **kwargs)
    if stale is not None:
        raise RuntimeError(f"jobstamps 0.0.20 would run again: {stale} is out of date")
    return op


def main():
    ops = {}
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        if cmd == "quit":
            break
        if cmd == "setup":
            ops[request["name"]] = _setup(request)
            answer = {"ok": True}
        elif cmd == "time":
            op = ops[request["name"]]
            n = request["n"]
            start = time.perf_counter()
            for _ in range(n):
                op()
            answer = {"seconds": time.perf_counter() - start}
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
