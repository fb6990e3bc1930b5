"""
The ``jobstamp`` command, run as users run it: the installed console script
(or ``python -m jobstamps``) in a subprocess, plus ``main(argv)`` in-process.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from jobstamps import _options, jobstamp_cmd_main

_SCRIPT = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
JOBSTAMP = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "jobstamps"]

COUNTING_TOOL = """\
#!/bin/sh
echo run >> "{count}"
printf 'out:%s\\n' "$*"
printf 'err:%s\\n' "$*" >&2
exit "${{TOOL_EXIT:-0}}"
"""


class Env:
    """
    A private stamp directory, a bin directory on PATH holding ``tool`` (a
    shell script that counts its runs), and helpers to run ``jobstamp``.
    """

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.stamps = tmp_path / "stamps"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.count_file = tmp_path / "count"
        self.script("tool", COUNTING_TOOL.format(count=self.count_file))
        self.environ = {
            k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")
        }
        self.environ["JOBSTAMPS_CACHE_DIR"] = str(self.stamps)
        self.environ["PATH"] = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def script(self, name, text, mode=0o755):
        path = self.bin / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def run(self, *args, input=b"", cwd=None, env=None):
        environ = dict(self.environ, **(env or {}))
        return subprocess.run(
            [*JOBSTAMP, *args],
            input=input,
            capture_output=True,
            cwd=cwd or self.tmp,
            env=environ,
            timeout=60,
        )

    @property
    def count(self):
        try:
            return len(self.count_file.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def stamp_files(self):
        """
        Every file in the stamp directory but its tag and the statistics.
        """
        return [
            os.path.join(folder, name)
            for folder, _, names in os.walk(self.stamps)
            for name in names
            if name != "CACHEDIR.TAG"
            and not (folder == str(self.stamps) and name.startswith("stats"))
        ]

    def age_stamps(self, seconds):
        then = time.time() - seconds
        for path in self.stamp_files():
            os.utime(path, (then, then))


@pytest.fixture(name="env")
def _env(tmp_path):
    return Env(tmp_path)


def lines(data):
    return data.decode().splitlines()


class TestRunAndReplay:
    def test_hit_replays_without_running(self, env):
        """A second run of the same command line replays stdout, stderr and exit code."""
        first = env.run("--", "tool", "a", env={"TOOL_EXIT": "3"})
        second = env.run("--", "tool", "a")

        assert (b"out:a\n", b"err:a\n", 3) == (
            first.stdout,
            first.stderr,
            first.returncode,
        )
        assert (first.stdout, first.stderr, 3) == (
            second.stdout,
            second.stderr,
            second.returncode,
        )
        assert 1 == env.count

    def test_argument_boundaries(self, env):
        """`tool a b` and `tool "a b"` are different commands."""
        env.run("--", "tool", "a", "b")
        env.run("--", "tool", "a b")
        env.run("--", "tool", "a", "b")

        assert 2 == env.count

    def test_binary_output(self, env):
        """Arbitrary bytes, invalid UTF-8 and no trailing newline survive both runs."""
        payload = bytes(range(256)) + b"\xff\xfe\x00tail"
        code = (
            "import sys; sys.stdout.buffer.write(bytes(range(256)) + b'\\xff\\xfe\\x00tail');"
            "sys.stderr.buffer.write(b'\\x80err'); sys.exit(5)"
        )
        results = [env.run("--", sys.executable, "-c", code) for _ in range(2)]

        for result in results:
            assert (payload, b"\x80err", 5) == (
                result.stdout,
                result.stderr,
                result.returncode,
            )

    def test_large_output(self, env):
        """Tens of megabytes on both streams are replayed exactly."""
        code = (
            "import sys; sys.stdout.buffer.write(bytes(range(256)) * 80000);"
            "sys.stderr.buffer.write(b'e' * 3000000)"
        )
        results = [env.run("--", sys.executable, "-c", code) for _ in range(2)]

        for result in results:
            assert bytes(range(256)) * 80000 == result.stdout
            assert b"e" * 3000000 == result.stderr

    def test_shebang_script_by_path_and_without_shebang(self, env):
        """A script with a shebang runs by path; one without runs with sh, like a shell."""
        env.script("plain", "echo plain $1\n")

        assert b"out:x\n" == env.run("--", str(env.bin / "tool"), "x").stdout
        assert b"plain y\n" == env.run("--", "plain", "y").stdout

    def test_python_dash_m(self, env):
        """`python -m jobstamps` is the same command."""
        result = subprocess.run(
            [sys.executable, "-m", "jobstamps", "--", "tool", "m"],
            capture_output=True,
            env=env.environ,
        )

        assert (b"out:m\n", 0) == (result.stdout, result.returncode)

    def test_output_streams_live(self, env):
        """On a miss, output reaches jobstamp's stdout while the command still runs."""
        env.script("slow", "#!/bin/sh\necho started\nexec sleep 30\n")
        process = subprocess.Popen(
            [*JOBSTAMP, "--", "slow"],
            stdout=subprocess.PIPE,
            env=env.environ,
            start_new_session=True,
        )
        try:
            assert b"started\n" == process.stdout.readline()
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            process.stdout.close()


class TestFailures:
    def test_not_found(self, env):
        """A command that is not on PATH exits 127 with one line, and nothing is stored."""
        result = env.run("--", "no-such-command-here")

        assert 127 == result.returncode
        assert ["jobstamp: no-such-command-here: command not found"] == lines(
            result.stderr
        )
        assert [] == env.stamp_files()

    def test_not_executable(self, env):
        """A file without execute permission exits 126, and nothing is stored."""
        path = env.script("noexec", "#!/bin/sh\necho hi\n", mode=0o644)
        result = env.run("--", str(path))

        assert 126 == result.returncode
        assert b"Permission denied" in result.stderr
        assert [] == env.stamp_files()

    def test_missing_path_and_bad_interpreter(self, env):
        """A missing path exits 127; a script whose interpreter is missing exits 126."""
        env.script("orphan", "#!/no/such/interpreter\necho hi\n")
        missing = env.run("--", "./no-such-file")
        orphan = env.run("--", "orphan")

        assert 127 == missing.returncode
        assert ["jobstamp: ./no-such-file: No such file or directory"] == lines(
            missing.stderr
        )
        assert 126 == orphan.returncode
        assert 1 == len(lines(orphan.stderr))
        assert [] == env.stamp_files()

    def test_unusable_stamp_directory(self, env):
        """A stamp directory that is a file is one line on stderr and exit status 2."""
        (env.tmp / "file").write_text("")
        result = env.run("--stamp-directory", str(env.tmp / "file"), "--", "tool")

        assert 2 == result.returncode
        assert 1 == len(lines(result.stderr))

    def test_reader_goes_away(self, env):
        """`jobstamp -- yes | head -1` ends at once, as a pipeline member: 141, no error, nothing stored."""
        pipeline = f"{' '.join(JOBSTAMP)} -- yes | head -1; echo ${{PIPESTATUS[0]}} >&2"
        result = subprocess.run(
            ["bash", "-c", pipeline],
            capture_output=True,
            env=env.environ,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )

        assert (b"y\n", b"141\n") == (result.stdout, result.stderr)
        assert [] == env.stamp_files()

    def test_stderr_reader_goes_away(self, env):
        """A closed stderr is passed on to the command the same way."""
        pipeline = (
            f"{' '.join(JOBSTAMP)} -- sh -c 'yes >&2' 2>&1 >/dev/null | head -1;"
            " echo ${PIPESTATUS[0]}"
        )
        result = subprocess.run(
            ["bash", "-c", pipeline], capture_output=True, env=env.environ, timeout=20
        )

        assert (b"y\n141\n", b"") == (result.stdout, result.stderr)
        assert [] == env.stamp_files()

    def test_command_that_handles_epipe_exits_with_its_own_status(self, env):
        """A command that catches the closed pipe itself exits with its own status."""
        code = (
            "import signal, sys\n"
            "signal.signal(signal.SIGPIPE, signal.SIG_IGN)\n"
            "try:\n"
            "    while True:\n"
            "        sys.stdout.write('x' * 65536 + '\\n'); sys.stdout.flush()\n"
            "except BrokenPipeError:\n"
            "    sys.stderr.close(); sys.exit(7)\n"
        )
        pipeline = (
            f"{' '.join(JOBSTAMP)} -- {sys.executable} -c \"$CODE\" | head -c 1 >/dev/null;"
            " echo ${PIPESTATUS[0]}"
        )
        result = subprocess.run(
            ["bash", "-c", pipeline],
            capture_output=True,
            env=dict(env.environ, CODE=code),
            timeout=20,
        )

        assert b"7\n" == result.stdout
        assert [] == env.stamp_files()

    def test_hit_replayed_into_a_closed_pipe(self, env):
        """A hit whose reader goes away ends with 141, no traceback and no noise at exit."""
        env.run("--", "seq", "300000")
        pipeline = (
            f"{' '.join(JOBSTAMP)} -- seq 300000 | head -1; echo ${{PIPESTATUS[0]}} >&2"
        )
        result = subprocess.run(
            ["bash", "-c", pipeline], capture_output=True, env=env.environ, timeout=20
        )

        assert (b"1\n", b"141\n") == (result.stdout, result.stderr)
        assert 1 == len(env.stamp_files())

    def test_killed_by_signal(self, env):
        """A command killed by a signal exits 128+N and is not stored."""
        env.script(
            "suicide", f"#!/bin/sh\necho run >> '{env.count_file}'\nkill -9 $$\n"
        )
        results = [env.run("--", "suicide") for _ in range(2)]

        assert [137, 137] == [r.returncode for r in results]
        assert 2 == env.count

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
    def test_interrupted(self, env, signum):
        """SIGINT or SIGTERM to jobstamp stops the command, exits 128+N and stores nothing."""
        env.script(
            "slow",
            f"#!/bin/sh\necho run >> '{env.count_file}'\necho started\nexec sleep 30\n",
        )
        process = subprocess.Popen(
            [*JOBSTAMP, "--", "slow"], stdout=subprocess.PIPE, env=env.environ
        )
        assert b"started\n" == process.stdout.readline()
        process.send_signal(signum)

        assert 128 + signum == process.wait(timeout=20)
        process.stdout.close()
        assert [] == env.stamp_files()

    def test_discard_failures(self, env):
        """With --discard-failures a non-zero exit runs every time; success is stored."""
        for _ in range(2):
            assert (
                1
                == env.run(
                    "--discard-failures", "--", "tool", env={"TOOL_EXIT": "1"}
                ).returncode
            )
        for _ in range(2):
            assert 0 == env.run("--discard-failures", "--", "tool").returncode

        assert 3 == env.count


class TestFreshness:
    def test_dependency_changed(self, env):
        """A changed dependency makes the command run again."""
        dep = env.tmp / "dep"
        dep.write_text("1")
        env.run("--dependencies", str(dep), "--", "tool")
        env.run("--dependencies", str(dep), "--", "tool")
        st = dep.stat()
        os.utime(dep, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        env.run("--dependencies", str(dep), "--", "tool")

        assert 2 == env.count

    def test_use_hashes(self, env):
        """With --use-hashes a touched dependency with the same content is no change."""
        dep = env.tmp / "dep"
        dep.write_text("1")
        env.run("--use-hashes", "--dependencies", str(dep), "--", "tool")
        os.utime(dep, (time.time() - 100, time.time() - 100))
        env.run("--use-hashes", "--dependencies", str(dep), "--", "tool")

        assert 1 == env.count

    def test_missing_output(self, env):
        """A missing output file makes the command run again."""
        out = env.tmp / "out"
        out.write_text("x")
        env.run("--output-files", str(out), "--", "tool")
        env.run("--output-files", str(out), "--", "tool")
        out.unlink()
        env.run("--output-files", str(out), "--", "tool")

        assert 2 == env.count

    def test_ttl(self, env):
        """A stamp older than --ttl is stale; a younger one is fresh."""
        env.run("--ttl", "10m", "--", "tool")
        env.age_stamps(5 * 60)
        env.run("--ttl", "10m", "--", "tool")
        env.age_stamps(11 * 60)
        env.run("--ttl", "10m", "--", "tool")
        env.run("--", "tool")

        assert 2 == env.count

    def test_env(self, env):
        """--env NAME keys on the variable's value; unset and empty differ."""
        for value in ["a", "b", "a", None, "", None]:
            extra = {} if value is None else {"FLAVOUR": value}
            env.run("--env", "FLAVOUR", "--", "tool", env=extra)

        assert 4 == env.count

    def test_cwd(self, env):
        """--cwd keys on the working directory; without it the directory is not keyed."""
        for name in ["a", "b"]:
            (env.tmp / name).mkdir()
            env.run("--cwd", "--", "tool", cwd=env.tmp / name)
            env.run("--", "tool", cwd=env.tmp / name)

        assert 3 == env.count

    def test_stdin(self, env):
        """--stdin feeds standard input to the command and keys on its bytes."""
        env.script("upper", f"#!/bin/sh\necho run >> '{env.count_file}'\ntr a-z A-Z\n")
        results = [
            env.run("--stdin", "--", "upper", input=data)
            for data in (b"abc", b"xyz", b"abc")
        ]

        why = [
            env.run("--why", "--stdin", "--", "upper", input=data).stdout[:19]
            for data in (b"abc", b"new")
        ]

        assert [b"ABC", b"XYZ", b"ABC"] == [r.stdout for r in results]
        assert 2 == env.count
        assert [b"up to date: would r", b"would run: no store"] == why

    def test_disabled(self, env):
        """With JOBSTAMPS_DISABLED set the command runs every time, and nothing is stored."""
        for _ in range(2):
            env.run("--", "tool", env={"JOBSTAMPS_DISABLED": "1"})

        assert 2 == env.count
        assert [] == env.stamp_files()

    @pytest.mark.parametrize("value", ["0", "false", "No", "OFF", ""])
    def test_disabled_off(self, env, value):
        """JOBSTAMPS_DISABLED=0 (or false, no, off, empty) leaves caching on."""
        for _ in range(2):
            env.run("--", "tool", env={"JOBSTAMPS_DISABLED": value})

        assert 1 == env.count

    def test_force(self, env):
        """--force runs the command even when its stamp is fresh."""
        env.run("--", "tool")
        env.run("--force", "--", "tool")
        env.run("--", "tool")

        assert 2 == env.count

    def test_dry_run(self, env):
        """--dry-run (--why) says whether and why it would run, and runs nothing."""
        dep = env.tmp / "dep"
        dep.write_text("1")
        before = env.run("--why", "--dependencies", str(dep), "--", "tool")
        env.run("--dependencies", str(dep), "--", "tool")
        fresh = env.run("--dry-run", "--dependencies", str(dep), "--", "tool")
        dep.unlink()
        gone = env.run("--dry-run", "--dependencies", str(dep), "--", "tool")

        assert 1 == env.count
        assert [0, 0, 0] == [r.returncode for r in (before, fresh, gone)]
        assert before.stdout.startswith(b"would run: no stored result yet: ")
        assert before.stdout.rstrip().endswith(os.path.basename(env.stamp_files()[0]).encode())
        assert fresh.stdout.startswith(b"up to date: ")
        assert f"would run: dependency missing: {dep}\n".encode() == gone.stdout


class TestUsage:
    def test_help(self, env):
        """--help documents every option, with examples."""
        result = env.run("--help")
        text = result.stdout.decode()

        assert 0 == result.returncode
        for option in [
            "--dependencies",
            "--output-files",
            "--stamp-directory",
            "--use-hashes",
            "--cwd",
            "--env",
            "--stdin",
            "--ttl",
            "--discard-failures",
            "--force",
            "--dry-run",
            "--why",
            "cache ls",
            "cache prune",
            "cache clear",
            "examples:",
        ]:
            assert option in text

    def test_without_separator(self, env):
        """Without '--' there is one line on stderr and exit status 1."""
        result = env.run("tool")

        assert 1 == result.returncode
        assert 1 == len(lines(result.stderr))
        assert 0 == env.count

    @pytest.mark.parametrize(
        "args",
        [
            ["--bogus", "--", "tool"],
            ["--ttl", "5 parsecs", "--", "tool"],
            ["--ttl", "--", "tool"],
            ["--force=yes", "--", "tool"],
            ["stray", "--", "tool"],
            ["--"],
            ["cache", "prune", "--max-size", "lots"],
            ["cache", "prune"],
            ["cache", "frobnicate"],
        ],
    )
    def test_bad_usage(self, env, args):
        """Bad options and values are one line on stderr, exit status 2, no traceback."""
        result = env.run(*args)

        assert 2 == result.returncode
        assert 1 == len(lines(result.stderr))
        assert result.stderr.startswith(b"jobstamp: error: ")
        assert 0 == env.count

    def test_error_names_the_file_even_when_a_word_holds_its_name(self, env):
        """A dependency that can't be used is named in the error line, even one called "files"."""
        (env.tmp / "files").mkdir()

        result = env.run("--dependencies", "files", "--", "tool", cwd=env.tmp)

        assert 2 == result.returncode
        assert ["jobstamp: error: jobstamps dependencies must be files, and this is a directory; list the files in it instead: files"] == lines(result.stderr)
        assert 0 == env.count

    def test_stamp_directory_and_abbreviations(self, env):
        """--stamp-directory puts stamps there; unique prefixes of options work, as in 0.0.20."""
        other = env.tmp / "other"
        env.run("--stamp-dir", str(other), "--", "tool")
        env.run("--stamp-directory", str(other), "--", "tool")

        assert 1 == env.count
        assert [] == env.stamp_files()
        assert any(files for _, _, files in os.walk(other))

    def test_dependencies_repeated_and_with_equals(self, env):
        """--dependencies takes several paths, may be repeated, and takes --dependencies=PATH."""
        deps = [env.tmp / n for n in "abc"]
        for dep in deps:
            dep.write_text(dep.name)
        env.run(
            "--dependencies",
            str(deps[0]),
            str(deps[1]),
            f"--dependencies={deps[2]}",
            "--",
            "tool",
        )
        deps[2].write_text("changed!")
        result = env.run(
            "--why",
            "--dependencies",
            str(deps[0]),
            str(deps[1]),
            f"--dependencies={deps[2]}",
            "--",
            "tool",
        )

        assert f"would run: dependency changed: {deps[2]}\n".encode() == result.stdout


class TestDebug:
    def test_lines_name_the_command_line(self, env):
        """Debug lines name the command line, never jobstamps' own functions."""
        results = [
            env.run("--", "tool", "a b", env={"JOBSTAMPS_DEBUG": "1"}) for _ in range(2)
        ]
        err = b"".join(r.stderr for r in results).decode()

        assert "jobstamps: tool 'a b': running, no stamp: " in err
        assert "jobstamps: tool 'a b': hit, using " in err
        assert not any(
            line.partition(": ")[2].startswith("jobstamps") for line in err.splitlines()
        )
        assert ":run_command" not in err

    def test_lines_name_a_function_with_its_arguments(self, env):
        """w(1) and w(2) are told apart; long arguments are shortened."""
        code = (
            "from jobstamps import jobstamped\n"
            "@jobstamped\n"
            "def w(x, y='y'):\n"
            "    return x\n"
            "w(1); w(2); w(1); w('z' * 1000, y=[1, 2])\n"
        )
        err = subprocess.run(
            [sys.executable, "-c", code],
            env=dict(env.environ, JOBSTAMPS_DEBUG="yes"),
            capture_output=True,
            text=True,
            check=True,
        ).stderr

        assert "jobstamps: __main__:w(1): running, no stamp: " in err
        assert "jobstamps: __main__:w(2): running, no stamp: " in err
        assert "jobstamps: __main__:w(1): hit, using " in err
        assert "__main__:w('zzzzzzzzzzzzzzzzz...zzzzzzzzzzzzzzzzzz', y=[1, 2]): " in err
        assert max(len(line) for line in err.splitlines()) < 400

    def test_output_not_written(self, env):
        """An --output-files file the run did not write is said once on that miss, and by --why next."""
        out = env.tmp / "dist" / "app.whl"
        first = env.run(
            "--output-files", str(out), "--", "tool", env={"JOBSTAMPS_DEBUG": "1"}
        )
        why = env.run("--why", "--output-files", str(out), "--", "tool")
        out.parent.mkdir()
        out.write_text("made by hand")
        made = env.run("--why", "--output-files", str(out), "--", "tool")

        assert 1 == first.stderr.decode().count(f"output {out} was not written by the run")
        assert f"would run: output {out} was not written by the last run\n".encode() == why.stdout
        assert made.stdout.startswith(b"up to date: ")


class TestCache:
    def test_ls_prune_clear(self, env):
        """ls lists command, age, size and exit code; prune and clear remove entries."""
        env.run("--", "tool", "old", env={"TOOL_EXIT": "4"})
        env.age_stamps(3 * 86400)
        env.run("--", "tool", "new one")
        listing = env.run("cache", "ls").stdout.decode()

        assert "tool old" in listing
        assert "tool 'new one'" in listing
        assert " 4  tool old" in listing
        assert "3d" in listing
        assert "2 entries" in listing.splitlines()[-1]

        pruned = env.run("cache", "prune", "--older-than", "1d")

        assert 0 == pruned.returncode
        assert 1 == len(env.stamp_files())
        assert "tool old" not in env.run("cache", "ls").stdout.decode()

        env.run("cache", "prune", "--max-size", "0")

        assert [] == env.stamp_files()

        env.run("--", "tool", "again")
        cleared = env.run("cache", "clear")

        assert cleared.stdout.startswith(b"removed 1 entry")
        assert [] == env.stamp_files()

    def test_max_size_keeps_newest(self, env):
        """prune --max-size removes the oldest entries first."""
        env.run("--", "tool", "1")
        env.age_stamps(100)
        env.run("--", "tool", "2")
        size = max(os.path.getsize(p) for p in env.stamp_files())
        env.run("cache", "prune", "--max-size", str(size))

        assert "tool 2" in env.run("cache", "ls").stdout.decode()
        assert 1 == len(env.stamp_files())

    def test_all_includes_functions(self, env):
        """ls --all also lists the stamps of Python functions; plain ls does not."""
        env.run("--", "tool")
        code = (
            "import sys\n"
            "from jobstamps import jobstamped\n"
            "@jobstamped\n"
            "def double(x):\n"
            "    return 2 * x\n"
            "double(21)\n"
        )
        subprocess.run([sys.executable, "-c", code], env=env.environ, check=True)
        plain = env.run("cache", "ls").stdout.decode()
        everything = env.run("cache", "ls", "--all").stdout.decode()

        assert "1 entry" in plain.splitlines()[-1]
        assert "2 entries" in everything.splitlines()[-1]
        assert "(function __main___double)" in everything

    def test_ls_tells_entries_apart(self, env):
        """Runs that differ by --env, --cwd, --stdin or --ttl get lines that differ, with their run time."""
        (env.tmp / "a").mkdir()
        env.run("--env", "GITHUB_REF", "--", "tool", env={"GITHUB_REF": "refs/heads/main"})
        env.run("--env", "GITHUB_REF", "--", "tool", env={"GITHUB_REF": "refs/pull/1"})
        env.run("--env", "GITHUB_REF", "--", "tool")
        env.run("--cwd", "--", "tool", cwd=env.tmp / "a")
        env.run("--stdin", "--", "tool", input=b"one")
        env.run("--stdin", "--", "tool", input=b"two")
        env.run("--ttl", "1h30m", "--", "tool")
        lines = env.run("cache", "ls").stdout.decode().splitlines()
        import hashlib

        one = hashlib.sha256(b"one").hexdigest()[:12]

        assert 9 == len(lines)
        assert len(set(lines[1:-1])) == 7
        assert "   AGE    TOOK    SIZE  EXIT  COMMAND" == lines[0]
        assert any(line.endswith("tool  [GITHUB_REF=refs/heads/main]") for line in lines)
        assert any(line.endswith("tool  [GITHUB_REF=refs/pull/1]") for line in lines)
        assert any(line.endswith("tool  [GITHUB_REF unset]") for line in lines)
        assert any(line.endswith(f"tool  [cwd={env.tmp / 'a'}]") for line in lines)
        assert any(line.endswith(f"tool  [stdin={one}]") for line in lines)
        assert any(line.endswith("tool  [ttl=1h30m]") for line in lines)

    def test_ls_shows_run_time_and_json(self, env):
        """ls shows how long each run took; --json gives the same for scripts."""
        import json

        env.run("--env", "X", "--", "sh", "-c", "sleep 0.3; exit 3", env={"X": "a\nb"})
        line = env.run("cache", "ls").stdout.decode().splitlines()[1]
        (entry,) = json.loads(env.run("cache", "ls", "--json").stdout)

        assert re.fullmatch(r" +\d+s +0\.[3-9]\ds +\S+ +3  sh -c 'sleep 0.3; exit 3'  \[X='a\\nb'\]", line), line
        assert ["sh", "-c", "sleep 0.3; exit 3"] == entry["command"]
        assert (3, {"X": "a\nb"}, None, None, None) == (
            entry["exit"],
            entry["env"],
            entry["cwd"],
            entry["stdin"],
            entry["ttl_seconds"],
        )
        assert 0.3 <= entry["duration_seconds"] < 30
        assert entry["path"] == env.stamp_files()[0]

    @pytest.mark.parametrize("action", ["ls", "prune", "clear"])
    def test_missing_stamp_directory(self, env, action):
        """--stamp-directory naming a missing folder or a file is one line of error and exit 2."""
        (env.tmp / "file").write_text("")
        extra = ["--max-size", "1M"] if action == "prune" else []
        for where in (env.tmp / "missing", env.tmp / "file"):
            result = env.run("cache", action, *extra, "--stamp-directory", str(where))

            assert 2 == result.returncode
            assert 1 == len(lines(result.stderr))
            assert b"" == result.stdout
        assert not (env.tmp / "missing").exists()

    def test_cache_leaves_other_files_alone(self, env):
        """clear --all removes only stamp files, whatever else is in the directory."""
        env.run("--", "tool")
        env.stamps.mkdir(exist_ok=True)
        (env.stamps / "notes.txt").write_text("keep me")
        env.run("cache", "clear", "--all", "--stamp-directory", str(env.stamps))

        assert [str(env.stamps / "notes.txt")] == env.stamp_files()


class TestInProcess:
    def test_main_with_swapped_text_streams(self, env, monkeypatch):
        """main(argv) writes through sys.stdout and sys.stderr, even StringIO ones."""
        monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(env.stamps))
        monkeypatch.setenv("PATH", env.environ["PATH"])
        argv = ["jobstamp", "--", "tool", "x"]
        seen = []
        for _ in range(2):
            out, err = io.StringIO(), io.StringIO()
            monkeypatch.setattr(sys, "stdout", out)
            monkeypatch.setattr(sys, "stderr", err)
            code = jobstamp_cmd_main.main(argv)
            seen.append((out.getvalue(), err.getvalue(), code))

        assert [("out:x\n", "err:x\n", 0)] * 2 == seen
        assert 1 == env.count

    def test_main_with_binary_buffers(self, env, monkeypatch):
        """Streams with a binary buffer get the exact bytes."""
        monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(env.stamps))
        code = "import sys; sys.stdout.buffer.write(b'\\xff\\x00')"
        for _ in range(2):
            out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
            monkeypatch.setattr(sys, "stdout", out)
            assert 0 == jobstamp_cmd_main.main(
                ["jobstamp", "--", sys.executable, "-c", code]
            )

            assert b"\xff\x00" == out.buffer.getvalue()

    def test_main_without_separator(self, monkeypatch):
        """main(argv) without '--' returns 1 with a message on sys.stderr."""
        err = io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)

        assert 1 == jobstamp_cmd_main.main(["jobstamp", "tool"])
        assert "'--'" in err.getvalue()


class TestHitPath:
    def test_hit_imports_nothing_heavy(self, env):
        """A cached run imports none of the modules that would make it slow."""
        env.run("--", "tool")
        check = (
            "import sys\n"
            "from jobstamps._cli import main\n"
            "assert main(['jobstamp', '--', 'tool']) == 0\n"
            "heavy = {'attr', 'attrs', 'typing', 'argparse', 'subprocess', 'hashlib',\n"
            "         'logging', 'platformdirs', 'inspect', 'threading', 'selectors',\n"
            "         'signal', 'fcntl', 'tempfile', 'shlex'}\n"
            "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, env=env.environ
        )

        assert (b"out:\n", b"err:\n[]\n") == (result.stdout, result.stderr)
        assert 1 == env.count


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("45", 45),
        ("0", 0),
    ],
)
def test_durations(text, seconds):
    """Durations take s, m, h, d and w units, combined or with decimals."""
    assert seconds * 10**9 == _options.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("500M", 500 << 20),
        ("2G", 2 << 30),
        ("10k", 10 << 10),
        ("100", 100),
        ("1.5KiB", 1536),
        ("7MB", 7 << 20),
        ("3B", 3),
    ],
)
def test_sizes(text, size):
    """Sizes take K, M, G and T in powers of 1024, with or without B or iB."""
    assert size == _options.parse_size(text)


@pytest.mark.parametrize("text", ["", " ", "-", "m", "5x", "1..5h", "--3s", "h1"])
def test_bad_durations(text):
    """Anything else is a usage error."""
    with pytest.raises(_options.UsageError):
        _options.parse_duration(text)
