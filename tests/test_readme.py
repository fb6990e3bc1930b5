"""
The README's examples run as written and do what its text says: every Python
block in order, and every console block, through a real shell, with
stand-ins on a temporary PATH for the tools the examples name (each logs its
runs; the real tool is used where it is part of every system: wc, tar).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
_SCRIPT = shutil.which("jobstamp", path=os.path.dirname(sys.executable))


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every Python block in the README runs as written, in order."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}

    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)

    assert len(blocks) >= 2
    assert (tmp_path / "notes.txt.upper").exists()


def test_readme_test_command_is_what_ci_runs():
    """CI runs exactly the test command the README gives newcomers."""
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"^\$ (.*pip install.*pytest.*)$", readme, re.MULTILINE)

    assert 1 == len(commands)
    assert commands[0] in ci.splitlines()


def test_how_it_works_names_every_module():
    """The README's "How it works" names every module of the package, and no other."""
    text = README.read_text()
    section = text[text.index("## How it works") :]
    section = section[: section.index("\n## ", 1)]
    package = Path(__file__).parent.parent / "src" / "jobstamps"
    modules = {
        path.name
        for path in package.glob("*.py")
        if path.name not in ("__init__.py", "__main__.py", "jobstamp_cmd_main.py")
    }
    named = set(re.findall(r"`(\w+\.py)`", section))

    assert modules == named


class Step:
    """
    One ``$ command`` of a console block (continued lines joined) and the
    lines the README shows it printing.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self.output: list[str] = []

    def __repr__(self) -> str:
        return f"Step({self.command!r})"


def console_blocks() -> list[list[Step]]:
    blocks = []
    for text in re.findall(r"```console\n(.*?)```", README.read_text(), re.DOTALL):
        steps: list[Step] = []
        lines = iter(text.splitlines())
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    command = command[:-1] + " " + next(lines).strip()
                steps.append(Step(command))
            else:
                steps[-1].output.append(line)
        blocks.append(steps)
    return blocks


class Sandbox:
    """
    A folder to run examples in, its own stamp directory, and stand-ins for
    the tools the examples name, each logging its runs.
    """

    def __init__(self, tmp_path: Path, name: str = "work") -> None:
        self.tmp = tmp_path
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir(exist_ok=True)
        self.log = tmp_path / "ran"
        assert _SCRIPT is not None, "jobstamps' console script is not installed"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")
        }
        self.env.update(
            JOBSTAMPS_CACHE_DIR=str(tmp_path / f"cache-{name}"),
            PATH=os.pathsep.join(
                [str(self.bin), os.path.dirname(_SCRIPT), os.environ.get("PATH", "")]
            ),
        )

    def stand_in(self, name: str, body: str) -> None:
        """
        A tool called *name* that logs its run, then runs the shell *body*.
        """
        path = self.bin / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{self.log}"\n{body}\n')
        path.chmod(0o755)

    def real(self, name: str) -> None:
        """
        The real *name*, its runs logged.
        """
        found = shutil.which(name)
        assert found is not None
        self.stand_in(name, f'exec {found} "$@"')

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(self, command: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.dir,
            env=dict(self.env, **env),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def ran(self, name: str) -> int:
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if line.split(" ", 1)[0] == name)

    def stamps(self) -> list[str]:
        """
        The stamp files: not the cache's tag nor its statistics.
        """
        from jobstamps._layout import is_stamp_file

        return [
            path
            for folder, _, names in os.walk(self.env["JOBSTAMPS_CACHE_DIR"])
            for name in names
            if is_stamp_file(path := os.path.join(folder, name))
        ]

    def age_stamps(self, seconds: float) -> None:
        then = time.time() - seconds
        for folder, _, names in os.walk(self.env["JOBSTAMPS_CACHE_DIR"]):
            for name in names:
                os.utime(os.path.join(folder, name), (then, then))


@pytest.fixture(name="sandbox")
def _sandbox(tmp_path):
    return Sandbox(tmp_path)


def block_starting(command: str) -> list[Step]:
    (block,) = [b for b in console_blocks() if b[0].command.startswith(command)]
    return block


def test_every_console_block_is_checked():
    """Each console block of the README has its check below (a new one needs one)."""
    firsts = [block[0].command for block in console_blocks()]

    assert sorted(CHECKED) == sorted(
        next(c for c in CHECKED if first.startswith(c)) for first in firsts
    )


def test_get_going(sandbox):
    """The first command: run twice, wc runs once; edit README.md, it runs again."""
    (step,) = block_starting("python3 -m venv .venv && .venv/bin/pip install .")
    setup, _, command = step.command.rpartition(" && ")
    assert "pip install ." in setup  # the installation is the test environment's
    command = command.replace(".venv/bin/jobstamp", "jobstamp")
    sandbox.real("wc")
    shutil.copy(README, sandbox.dir / "README.md")
    runs = [sandbox.run(command) for _ in range(2)]
    with open(sandbox.dir / "README.md", "a") as file:
        file.write("one more line\n")
    edited = sandbox.run(command)
    lines = len(README.read_text().splitlines())

    assert [f"{lines} README.md\n"] * 2 == [r.stdout for r in runs]
    assert f"{lines + 1} README.md\n" == edited.stdout
    assert 2 == sandbox.ran("wc")


def test_make(sandbox):
    """make runs once; the second run replays its output and exit code."""
    steps = block_starting("jobstamp --dependencies src/*.c -- make -j8")
    sandbox.stand_in("make", "echo 'cc -c src/a.c'; echo 'warning: unused' >&2; exit 2")
    sandbox.write("src/a.c", "int a;\n")
    sandbox.write("src/b.c", "int b;\n")
    first, second = (sandbox.run(step.command) for step in steps)
    sandbox.write("src/a.c", "int a = 1;\n")
    third = sandbox.run(steps[1].command)

    assert ("cc -c src/a.c\n", "warning: unused\n", 2) == (
        first.stdout,
        first.stderr,
        first.returncode,
    )
    assert (first.stdout, first.stderr, 2) == (
        second.stdout,
        second.stderr,
        second.returncode,
    )
    assert 2 == third.returncode
    assert 2 == sandbox.ran("make")


class TestExamples:
    """The examples after the option table, each as the paragraph under them says."""

    @pytest.fixture(name="steps")
    def _steps(self):
        steps = block_starting("jobstamp --dependencies src/*.c --output-files src.tar.gz")
        assert 5 == len(steps)
        return steps

    def test_archive(self, sandbox, steps):
        """Made again only when a source changed or the archive is gone."""
        sandbox.real("tar")
        sandbox.write("src/a.c", "int a;\n")
        command = steps[0].command
        sandbox.run(command)
        made = (sandbox.dir / "src.tar.gz").stat().st_mtime_ns
        sandbox.run(command)
        kept = (sandbox.dir / "src.tar.gz").stat().st_mtime_ns
        (sandbox.dir / "src.tar.gz").unlink()
        sandbox.run(command)
        remade = (sandbox.dir / "src.tar.gz").exists()
        sandbox.write("src/a.c", "int a = 2;\n")
        sandbox.run(command)

        assert made == kept
        assert remade
        assert 3 == sandbox.ran("tar")

    def test_lock_file(self, sandbox, steps):
        """Compiled again only when requirements.in changed in content, or the lock file is gone."""
        sandbox.stand_in(
            "pip-compile",
            "{ echo '# compiled'; cat requirements.in; } > requirements.txt; cat requirements.txt",
        )
        command = steps[1].command
        requirements = sandbox.write("requirements.in", "attrs\n")
        outputs = [sandbox.run(command).stdout for _ in range(2)]
        requirements.write_text("attrs\n")  # a fresh checkout: same content, new mtime
        os.utime(requirements, (time.time() + 5, time.time() + 5))
        sandbox.run(command)
        (sandbox.dir / "requirements.txt").unlink()
        sandbox.run(command)
        requirements.write_text("attrs\nnumpy\n")
        sandbox.run(command)

        assert ["# compiled\nattrs\n"] * 2 == outputs
        assert 3 == sandbox.ran("pip-compile")

    def test_pull_requests(self, sandbox, steps):
        """Asked for again after an hour, or on another branch."""
        sandbox.stand_in("gh", "echo \"[{\\\"number\\\": 1, \\\"ref\\\": \\\"$GITHUB_REF\\\"}]\"")
        command = steps[2].command
        main = [sandbox.run(command, GITHUB_REF="refs/heads/main").stdout for _ in range(2)]
        other = sandbox.run(command, GITHUB_REF="refs/heads/other").stdout
        sandbox.age_stamps(3601)
        sandbox.run(command, GITHUB_REF="refs/heads/main")

        assert ['[{"number": 1, "ref": "refs/heads/main"}]\n'] * 2 == main
        assert '[{"number": 1, "ref": "refs/heads/other"}]\n' == other
        assert 3 == sandbox.ran("gh")

    def test_summary(self, sandbox, steps):
        """A summary made again only for another diff."""
        sandbox.stand_in("git", "cat changes.diff")
        summarise = sandbox.write(
            "summarise", f'#!/bin/sh\necho "summarise" >> "{sandbox.log}"\necho "$(wc -l) changed lines"\n'
        )
        summarise.chmod(0o755)
        command = steps[3].command
        sandbox.write("changes.diff", "+a\n+b\n")
        same = [sandbox.run(command).stdout for _ in range(2)]
        sandbox.write("changes.diff", "+a\n")
        other = sandbox.run(command).stdout

        assert ["2 changed lines\n"] * 2 == same
        assert "1 changed lines\n" == other
        assert 2 == sandbox.ran("summarise")

    def test_tests(self, sandbox, steps):
        """Run again when a Python file changed, every time while they fail, apart per directory."""
        sandbox.stand_in(
            "pytest",
            "if grep -q fail tests/*.py; then echo '1 failed'; exit 1; fi; echo '1 passed'",
        )
        command = steps[4].command
        sandbox.write("app.py", "x = 1\n")
        test = sandbox.write("tests/test_app.py", "def test(): pass\n")
        passed = [sandbox.run(command) for _ in range(2)]
        test.write_text("def test(): fail\n")
        failed = [sandbox.run(command) for _ in range(2)]
        runs = sandbox.ran("pytest")
        shutil.copytree(sandbox.dir, sandbox.tmp / "other")
        (sandbox.tmp / "other" / "tests" / "test_app.py").write_text("def test(): pass\n")
        elsewhere = subprocess.run(
            ["bash", "-c", command], cwd=sandbox.tmp / "other", env=sandbox.env, capture_output=True, text=True
        )

        assert [("1 passed\n", 0)] * 2 == [(r.stdout, r.returncode) for r in passed]
        assert [("1 failed\n", 1)] * 2 == [(r.stdout, r.returncode) for r in failed]
        assert 3 == runs
        assert ("1 passed\n", 4) == (elsewhere.stdout, sandbox.ran("pytest"))


class TestWhy:
    @pytest.fixture(name="steps")
    def _steps(self, sandbox):
        sandbox.stand_in("cc", "touch a.o")
        sandbox.write("a.c", "int a;\n")
        return block_starting("jobstamp --dependencies a.c --output-files a.o -- cc -c a.c")

    def test_changed_dependency(self, sandbox, steps):
        """After an edit, --why prints what the README shows."""
        results = [sandbox.run(step.command) for step in steps]

        assert steps[-1].output == results[-1].stdout.splitlines()
        assert 1 == sandbox.ran("cc")

    def test_before_the_first_run(self, sandbox, steps):
        """Before the first run, --why names where the result would be stored."""
        why = sandbox.run(steps[-1].command).stdout

        assert why.startswith("would run: no stored result yet: ")
        assert why.strip().rpartition(": ")[2].startswith(sandbox.env["JOBSTAMPS_CACHE_DIR"])

    def test_output_not_written(self, sandbox, steps):
        """An output the command did not write is named as such."""
        sandbox.stand_in("cc", "true")
        sandbox.run(steps[0].command)
        why = sandbox.run(steps[-1].command).stdout

        assert "would run: output a.o was not written by the last run\n" == why
        assert 1 == sandbox.ran("cc")


_ENTRY = re.compile(
    r"^ *(?P<age>\S+) +(?P<took>\S+) +(?P<size>\S+) +(?P<code>\S+)  (?P<command>.*?)"
    r"(?:  \[(?P<details>.*)\])?$"
)


def test_cache_ls_prune_clear(sandbox):
    """The listing shown is what cache ls prints for those runs; prune and clear work as shown."""
    ls, prune, clear = block_starting("jobstamp cache ls")
    header, *entries, total = ls.output
    ages = {"m": 60, "h": 3600, "d": 86400}
    expected = []
    for line in reversed(entries):  # oldest first
        entry = _ENTRY.match(line)
        assert entry is not None, line
        argv = shlex.split(entry["command"])
        options, env = [], {}
        cwd = sandbox.dir
        for detail in shlex.split(entry["details"] or ""):
            name, _, value = detail.partition("=")
            if name == "ttl":
                options += ["--ttl", value]
            elif name == "cwd":
                options.append("--cwd")
                cwd = sandbox.dir / Path(value).name
                cwd.mkdir(exist_ok=True)
                line = line.replace(value, str(cwd))
            else:
                options += ["--env", name]
                env[name] = value
        sandbox.stand_in(argv[0], f"exit {entry['code']}")
        before = set(sandbox.stamps())
        subprocess.run(
            ["jobstamp", *options, "--", *argv],
            cwd=cwd,
            env=dict(sandbox.env, **env),
            check=False,
        )
        (new,) = set(sandbox.stamps()) - before
        then = time.time() - int(entry["age"][:-1]) * ages[entry["age"][-1]] - 5
        os.utime(new, (then, then))
        # The age, exit code and command as shown; the rest as measured.
        columns = re.escape(line[: entry.start("command")])
        for measured in ("took", "size"):
            columns = columns.replace(re.escape(entry[measured]), r"\S+", 1)
        expected.append(
            re.sub(r"(\\ )+", " +", columns) + re.escape(line[entry.start("command") :])
        )
    listing = sandbox.run(ls.command).stdout.splitlines()
    pruned = sandbox.run(prune.command)
    cleared = sandbox.run(clear.command)

    assert header == listing[0]
    assert len(expected) + 2 == len(listing)
    for pattern, line in zip(reversed(expected), listing[1:-1], strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    assert re.fullmatch(r"3 entries, \S+ in " + re.escape(sandbox.env["JOBSTAMPS_CACHE_DIR"]), listing[-1])
    assert total.startswith("3 entries, ")
    assert (0, "removed 0 entries") == (pruned.returncode, pruned.stdout[:17])
    assert cleared.stdout.startswith("removed 3 entries")
    assert sandbox.run(ls.command).stdout.startswith("0 entries")


def test_sharing(tmp_path, redis_url):
    """A result stored on one machine is a hit on another, its output written back."""
    steps = block_starting("pip install 'jobstamps[redis]'")
    script = "\n".join(step.command for step in steps)
    # The store is the test's own server; the secret a real one.
    script = re.sub(r"rediss://\S+", f"{redis_url}/0", script)
    script = script.replace("JOBSTAMPS_SECRET=...", f"JOBSTAMPS_SECRET={uuid.uuid4().hex}")
    machines = [Sandbox(tmp_path, f"machine{n}") for n in (1, 2)]
    for machine in machines:
        machine.stand_in("pip", "true")
        machine.write("schema.graphql", "type Query { hello: String }\n")
        machine.write("src/.keep", "")
        codegen = machine.write(
            "codegen", f'#!/bin/sh\necho "codegen" >> "{machine.log}"\necho "# from $1" > src/api.py\n'
        )
        codegen.chmod(0o755)
    results = [machine.run(script) for machine in machines]

    assert [0, 0] == [r.returncode for r in results], results
    assert 1 == machines[0].ran("codegen")
    assert "# from schema.graphql\n" == (machines[1].dir / "src" / "api.py").read_text()


_STATS_ROW = re.compile(
    r" *(?P<hits>\d+) +(?P<misses>\d+) +(?P<rate>[\d.]+%) +(?P<saved>\S+)  (?P<name>.+)"
)


def test_cache_stats(sandbox):
    """cache stats shows hits, misses, hit rate and time saved per command, most saved first, then the total; --json and --zero work as shown."""
    stats, as_json, zero = block_starting("jobstamp cache stats")
    header, *rows, total = stats.output
    assert all(_STATS_ROW.fullmatch(line) for line in [*rows, total]), stats.output
    sandbox.stand_in("make", "sleep 0.2; echo built")
    sandbox.write("deploy.sh", "#!/bin/sh\necho deploying; exit 1\n").chmod(0o755)
    sandbox.write("Makefile", "all:\n")
    for _ in range(3):  # a miss, then two hits
        sandbox.run("jobstamp --dependencies Makefile -- make")
    for _ in range(2):  # failures are never stored: two misses
        sandbox.run("jobstamp --discard-failures -- ./deploy.sh")

    shown = sandbox.run(stats.command)
    saved = sandbox.run(as_json.command)
    zeroed = sandbox.run(zero.command)
    after = sandbox.run(stats.command)

    lines = shown.stdout.splitlines()
    assert header.split() == lines[0].split()  # columns as wide as their figures
    found = [_STATS_ROW.fullmatch(line) for line in lines[1:]]
    assert all(found), lines
    by_name = {m["name"]: m for m in found if m is not None}
    assert ("2", "1", "66.7%") == tuple(by_name["$ make"].group("hits", "misses", "rate"))
    assert ("0", "2", "0.0%") == tuple(by_name["$ ./deploy.sh"].group("hits", "misses", "rate"))
    assert ["$ make", "$ ./deploy.sh", "total"] == [m["name"] for m in found if m]
    assert ("2", "3") == by_name["total"].group("hits", "misses")
    document = json.loads((sandbox.dir / "stats.json").read_text())
    assert 0 == saved.returncode and 2 == document["total"]["hits"]
    assert 0 == zeroed.returncode
    assert after.stdout.startswith("no statistics yet")


CHECKED = [
    "python3 -m venv .venv && .venv/bin/pip install .",
    "python3 -m venv .venv && .venv/bin/pip install -e",  # the test command: what CI runs
    "jobstamp --dependencies src/*.c -- make -j8",
    "jobstamp --dependencies src/*.c --output-files src.tar.gz",
    "jobstamp --dependencies a.c --output-files a.o -- cc -c a.c",
    "jobstamp cache ls",
    "jobstamp cache stats",
    "pip install 'jobstamps[redis]'",
]
