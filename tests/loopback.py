"""
A real server process on a free loopback port, for tests: what the Redis
and S3 servers the tests start have in common.

A server the tests need but can't start is a skip, except on CI (``$CI``
set), where it is a failure: a CI that silently skips them would test
nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import NoReturn

import pytest


def free_port() -> int:
    """
    A loopback TCP port nothing listens on right now.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(message: str) -> NoReturn:
    """
    Skip the test for want of a server; fail it on CI.
    """
    if os.environ.get("CI"):
        pytest.fail(message + "; it is required on CI")
    pytest.skip(message)


class LoopbackServer:
    """
    One server process on a free loopback port, killed by :meth:`stop`.
    Subclasses say how to start it and how to tell it answers.
    """

    startup_seconds = 10.0
    poll_seconds = 0.01

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        # The port may be taken between free_port() and the server binding it.
        for _ in range(3):
            self.port = free_port()
            self._process = subprocess.Popen(
                self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + self.startup_seconds
            while time.monotonic() < deadline and self._process.poll() is None:
                if self.answers():
                    return
                time.sleep(self.poll_seconds)
            self.stop()
        raise RuntimeError(f"{self.executable} did not answer")

    def stop(self) -> None:
        """
        Kill the server at once, as a crash would.
        """
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
