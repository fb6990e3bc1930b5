"""
Signals reach the command as a shell's foreground job would get them: its
whole process group when standard input is not a terminal, the terminal's
foreground group (tested through a real pseudo-terminal) when it is.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

from .test_cli import JOBSTAMP, Env


@pytest.fixture(name="env")
def _env(tmp_path):
    return Env(tmp_path)


def processes_with(marker: str, program: str = "") -> list[int]:
    """
    The pids of the processes whose command line holds *marker*, and whose
    program's name ends with *program*.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                argv = file.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(program.encode()) and marker.encode() in b" ".join(argv[1:]):
            found.append(int(entry))
    return found


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as file:
        return file.read().rpartition(")")[2].split()[0]


class TestProcessGroup:
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
    def test_signal_reaches_the_whole_tree(self, env, signum):
        """A signal to jobstamp alone ends the command and its children within 2 s; 128+N, nothing stored."""
        # A unique duration marks this test's sleeps among the machine's processes.
        seconds = f"60.{uuid.uuid4().int % 10**6:06d}"
        process = subprocess.Popen(
            [*JOBSTAMP, "--", "sh", "-c", f"echo started; sleep {seconds} & sleep {seconds}; wait"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env.environ,
        )
        try:
            assert b"started\n" == process.stdout.readline()
            assert wait_for(lambda: len(processes_with(seconds, "sleep")) == 2, 10)
            start = time.monotonic()
            process.send_signal(signum)
            code = process.wait(timeout=10)
            ended = time.monotonic() - start
            left = wait_for(lambda: not processes_with(seconds, "sleep"), 2)
        finally:
            for pid in processes_with(seconds, "sleep"):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()
            process.stdout.close()

        assert 128 + signum == code
        assert ended < 2.5, f"jobstamp took {ended:.1f} s to end"
        assert left, "a sleep outlived jobstamp by more than 2 s"
        assert [] == env.stamp_files()

    def test_command_that_ignores_the_signal_is_killed(self, env):
        """A command that ignores SIGTERM is killed a second later."""
        process = subprocess.Popen(
            [*JOBSTAMP, "--", "sh", "-c", "trap '' TERM; echo started; sleep 30"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env.environ,
        )
        assert b"started\n" == process.stdout.readline()
        process.send_signal(signal.SIGTERM)

        assert 128 + signal.SIGKILL == process.wait(timeout=10)
        process.stdout.close()
        assert [] == env.stamp_files()


# A shell with job control, small: runs its arguments as the terminal's
# foreground job (a process group of its own, as interactive shells do, so
# that stop signals are delivered), says when the job stops, and resumes it
# a second and a half later as `fg` would (time for a test to see it
# stopped, on a loaded machine too).
SHELL = """
import os, signal, sys, time
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(sys.argv[1], sys.argv[1:])
try:
    os.setpgid(pid, pid)  # as the child does: whichever comes first
except PermissionError:  # the child has already exec'd, in its group
    pass
os.tcsetpgrp(0, pid)
print(f"job={pid}", flush=True)
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        print("[stopped]", flush=True)
        time.sleep(1.5)
        os.tcsetpgrp(0, pid)
        os.killpg(pid, signal.SIGCONT)
        continue
    os.tcsetpgrp(0, os.getpgrp())
    sys.exit(os.waitstatus_to_exitcode(status))
"""


def spawn_in_terminal(env, *args):
    """
    jobstamp as the foreground job of a shell on a fresh pseudo-terminal:
    the shell's pid, the terminal's master side, and jobstamp's pid.
    """
    shell, master = pty.fork()
    if shell == 0:  # the child: its stdin, stdout and stderr are the terminal
        try:
            os.execve(sys.executable, [sys.executable, "-c", SHELL, *JOBSTAMP, *args], env.environ)
        finally:
            os._exit(127)
    import re

    seen = b""
    while (found := re.search(rb"job=(\d+)\r?\n", seen)) is None:
        more = read_until(master, b"\n", timeout=10)
        if not more:
            raise AssertionError(f"the shell said {seen!r}")
        seen += more
    return shell, master, int(found.group(1))


def read_until(master: int, text: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:  # the terminal's other side is gone
                break
    return seen


def exit_status(pid: int, timeout: float = 10) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


class TestTerminal:
    def test_command_reads_the_terminal(self, env):
        """With a terminal on stdin, the command stays in its foreground group and reads it."""
        pid, master, _ = spawn_in_terminal(env, "--", "sh", "-c", "echo ready; read x; echo got $x")
        try:
            assert b"ready" in read_until(master, b"ready")
            os.write(master, b"hello\n")
            seen = read_until(master, b"got hello")
            code = exit_status(pid)
        finally:
            os.close(master)

        assert b"got hello" in seen
        assert 0 == code

    def test_ctrl_c_reaches_the_command(self, env):
        """Ctrl-C at the terminal ends the command as without jobstamp: 130, nothing stored."""
        pid, master, _ = spawn_in_terminal(env, "--", "sh", "-c", "echo ready; exec sleep 30")
        try:
            assert b"ready" in read_until(master, b"ready")
            time.sleep(0.2)  # sleep has replaced sh
            start = time.monotonic()
            os.write(master, b"\x03")
            code = exit_status(pid)
            took = time.monotonic() - start
        finally:
            os.close(master)

        assert 130 == code
        assert took < 2
        assert [] == env.stamp_files()

    def test_ctrl_c_handled_by_the_command(self, env):
        """A command that handles Ctrl-C goes on, and finishes with its own output and status."""
        code = (
            "import signal, sys, time\n"
            "caught = []\n"
            "signal.signal(signal.SIGINT, lambda *a: caught.append(print('caught', flush=True)))\n"
            "print('ready', flush=True)\n"
            "while not caught:\n"
            "    time.sleep(0.01)\n"
            "time.sleep(0.3)\n"
            "print('done', flush=True)\n"
            "sys.exit(3)\n"
        )
        pid, master, _ = spawn_in_terminal(env, "--", sys.executable, "-c", code)
        try:
            assert b"ready" in read_until(master, b"ready")
            os.write(master, b"\x03")
            seen = read_until(master, b"done")
            status = exit_status(pid)
        finally:
            os.close(master)

        assert b"caught" in seen and b"done" in seen
        assert 3 == status
        assert [] == env.stamp_files()  # a run that was interrupted is not stored

    def test_ctrl_z_stops_the_command(self, env):
        """Ctrl-Z stops the command with jobstamp, and SIGCONT resumes both."""
        marker = f"stopme{uuid.uuid4().hex}"
        code = f"import time; print('ready', flush=True); time.sleep(30)  # {marker}"
        shell, master, pid = spawn_in_terminal(env, "--", sys.executable, "-c", code)
        try:
            assert b"ready" in read_until(master, b"ready")
            (command,) = [p for p in processes_with(marker) if p not in (pid, shell)]
            os.write(master, b"\x1a")
            said = read_until(master, b"[stopped]")
            # The stop reaches every process of the group, each as it is
            # scheduled: the command may stop a moment after jobstamp.
            stopped = wait_for(lambda: state(command) == "T" and state(pid) == "T", 1)
            resumed = wait_for(lambda: state(command) != "T" and state(pid) != "T", 8)
            os.killpg(pid, signal.SIGTERM)
            exit_status(shell)
        finally:
            os.close(master)
            for left in processes_with(marker):
                os.kill(left, signal.SIGKILL)

        assert b"[stopped]" in said
        assert stopped
        assert resumed

    def test_sigterm_to_jobstamp_alone_reaches_the_command(self, env):
        """With a terminal, a SIGTERM sent to jobstamp alone is passed to the command."""
        shell, master, pid = spawn_in_terminal(env, "--", "sh", "-c", "echo ready; exec sleep 30")
        try:
            assert b"ready" in read_until(master, b"ready")
            os.kill(pid, signal.SIGTERM)
            code = exit_status(shell)
        finally:
            os.close(master)

        assert 128 + signal.SIGTERM == code
        assert [] == env.stamp_files()
