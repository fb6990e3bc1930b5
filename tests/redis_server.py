"""
A real redis-server on a free loopback port, for tests.

Import the fixtures into a test module to use them. Without redis-server the
tests that need it are skipped, except on CI (``$CI`` set), where they fail:
a CI that silently skips them would test nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

STARTUP_SECONDS = 10.0


def free_port() -> int:
    """
    A loopback TCP port nothing listens on right now.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """
    One redis-server process, without persistence, killed by :meth:`stop`.
    """

    def __init__(self, executable: str, directory: str) -> None:
        self.executable = executable
        self.directory = directory
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # The port may be taken between free_port() and redis binding it.
        for _ in range(3):
            self.port = free_port()
            self._process = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self.directory,
                    "--daemonize", "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline and self._process.poll() is None:
                if ping(self.port):
                    return
                time.sleep(0.01)
            self.stop()
        raise RuntimeError(f"{self.executable} did not answer PING")

    def stop(self) -> None:
        """
        Kill the server at once, as a crash would.
        """
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _executable() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + "; it is required on CI")
        pytest.skip(message)
    return executable


@pytest.fixture(name="redis_url", scope="session")
def _redis_url(tmp_path_factory: pytest.TempPathFactory) -> object:
    """
    The URL of a redis-server shared by the whole session.
    """
    server = RedisServer(_executable(), str(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(name="redis_server")
def _redis_server(tmp_path: object) -> object:
    """
    A redis-server of the test's own, which the test may kill.
    """
    server = RedisServer(_executable(), str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
