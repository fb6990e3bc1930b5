"""
How figures are taken: contenders timed in batches, round by round in a
rotating order, medians of the rounds; jobstamps 0.0.20 timed by a worker in
its own environment; whole processes timed with hyperfine or a loop; and the
files scenarios measure over.

``Bench`` is what a scenario gets: the rounds, the report, the worker and a
scratch folder. This module knows no scenario and no jobstamps internals.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from envs import HERE, LEGACY, bin_path, clean_env
from report import MiB, Report


class Contender:
    """
    One thing timed: *op* run *n* times per sample, *prepare* (untimed)
    before each sample.
    """

    def __init__(
        self,
        name: str,
        op: Callable[[], object] | None = None,
        prepare: Callable[[], object] | None = None,
        n: int | None = None,
    ) -> None:
        self.name = name
        self.op = op
        self.prepare = prepare
        self.n = n

    def total(self, n: int) -> float:
        assert self.op is not None
        op = self.op
        if self.prepare is not None:
            self.prepare()
        start = time.perf_counter()
        for _ in range(n):
            op()
        return time.perf_counter() - start

    def calibrate(self, target: float) -> None:
        if self.n is not None:
            return
        n = 1
        while True:
            elapsed = self.total(n)
            if elapsed >= target or n >= 1 << 24:
                break
            n = max(n * 2, int(n * target / max(elapsed, 1e-9) * 1.1))
        self.n = n

    def sample(self) -> float:
        assert self.n is not None
        return self.total(self.n) / self.n


def measure(
    contenders: list[Contender], rounds: int, target: float
) -> dict[str, float]:
    """
    The median seconds per operation of each contender, over *rounds*
    rounds in which every contender takes one sample, in a rotating order.
    """
    for c in contenders:
        c.calibrate(target)
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(rounds):
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for c in order:
            samples[c.name].append(c.sample())
    return {name: statistics.median(values) for name, values in samples.items()}


class Legacy:
    """
    The worker process timing jobstamps 0.0.20 in its own environment.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(bin_path(LEGACY, "python")), "-I", str(HERE / "_legacy_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.count = 0

    def ask(self, **request: object) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the jobstamps 0.0.20 worker died")
        answer: dict[str, object] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def contender(self, label: str, **setup: object) -> Contender:
        """
        A contender timed by the worker (see _legacy_worker.py for *setup*).
        """
        self.count += 1
        name = f"legacy-{self.count}"
        self.ask(cmd="setup", name=name, **setup)
        legacy = self

        class Remote(Contender):
            def total(self, n: int) -> float:
                return float(legacy.ask(cmd="time", name=name, n=n)["seconds"])  # type: ignore[arg-type]

        return Remote(label)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask(cmd="quit")
        self.proc.wait(timeout=10)


def time_commands(
    commands: dict[str, list[str]],
    runs: int,
    rounds: int,
    work: Path,
    env: dict[str, str],
) -> dict[str, float]:
    """
    Median wall time of each command, over *rounds* rounds of *runs*/*rounds*
    runs each, the commands alternating round by round.
    """
    per_round = max(3, runs // rounds)
    times: dict[str, list[float]] = {name: [] for name in commands}
    hyperfine = shutil.which("hyperfine")
    for r in range(rounds):
        if hyperfine:
            out = work / f"hyperfine-{r}.json"
            argv = [
                hyperfine,
                "-N",
                "--warmup",
                "3",
                "--runs",
                str(per_round),
                "--export-json",
                str(out),
                "--style",
                "none",
            ]
            names = list(commands)
            argv += [shlex.join(commands[n]) for n in names]
            done = subprocess.run(
                argv,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"hyperfine failed: {done.stderr}")
            results = json.loads(out.read_text())["results"]
            for name, result in zip(names, results, strict=True):
                times[name].extend(result["times"])
        else:
            for name, argv in commands.items():
                for _ in range(per_round):
                    start = time.perf_counter()
                    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


class Bench:
    """
    What every scenario gets: how many rounds, how long a batch, where to
    report, the 0.0.20 worker and a scratch folder removed at the end.
    """

    def __init__(
        self, quick: bool, rounds: int, report: Report, legacy: Legacy, work: Path
    ) -> None:
        self.quick = quick
        self.rounds = rounds
        self.batch_seconds = 0.02 if quick else 0.1
        self.report = report
        self.legacy = legacy
        self.work = work

    @property
    def few_rounds(self) -> int:
        """
        The rounds of scenarios whose every sample takes a second or more.
        """
        return max(3, self.rounds // 2)

    def measure(
        self, contenders: list[Contender], rounds: int | None = None
    ) -> dict[str, float]:
        """
        ``measure`` with this run's rounds (or *rounds*) and batch length.
        """
        return measure(contenders, rounds or self.rounds, self.batch_seconds)

    def dir(self, name: str) -> str:
        """
        The scratch folder *name*, made if need be.
        """
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)


def make_files(folder: Path, count: int, size: int, age_s: float = 5.0) -> list[str]:
    """
    *count* files of *size* bytes, their mtimes set *age_s* seconds into the
    past, as in a checkout made a while before the first stamped call.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    when = time.time() - age_s
    block = os.urandom(size)
    for i in range(count):
        path = folder / f"d{i // 100:03d}" / f"file{i:05d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(block[i % size :] + block[: i % size])
        os.utime(path, (when, when))
        paths.append(str(path))
    return paths


def write_big(path: Path, size: int) -> None:
    """
    A file of *size* random bytes, 5 seconds old, on disk.
    """
    block = os.urandom(16 * MiB)
    with open(path, "wb") as file:
        left = size
        while left > 0:
            file.write(block[: min(left, len(block))])
            left -= len(block)
    when = time.time() - 5
    os.utime(path, (when, when))
    os.sync()


def then_sync(prepare: Callable[[], object]) -> Callable[[], None]:
    """
    *prepare*, then ``sync``: every write starts with no dirty pages queued
    by the one before.
    """

    def run() -> None:
        prepare()
        os.sync()

    return run
